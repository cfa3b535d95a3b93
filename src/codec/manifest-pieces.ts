/**
 * backup_manifest written in pieces (pure, no streams): the bytes
 * buildManifest (./manifest.ts) writes, byte for byte, as a generator of
 * buffers of about `pieceSize` bytes, so that a manifest built from a large
 * backup (chunk-diff's, for an incremental refresh) is never held whole.
 *
 * The head ("Files": [) and tail (the WAL ranges) are cut from buildManifest
 * of the same input without files, so the two cannot drift apart; the file
 * lines are its own (fileLine); the checksum is computed as pieces go.
 * Errors: ManifestError, as buildManifest's (a bad file throws when its
 * piece is taken).
 */
import { createHash } from 'node:crypto';
import { buildManifest, fileLine, type BuildManifestInput } from './manifest';

export const MANIFEST_PIECE = 64 * 1024;

export function* buildManifestPieces(input: BuildManifestInput, pieceSize = MANIFEST_PIECE): Generator<Buffer> {
  // Without files buildManifest writes: head `"Files": [` `\n],\n"WAL-Ranges"…` `"Manifest-Checksum"…`.
  const empty = buildManifest({ ...input, files: [] }).toString('utf8');
  const filesAt = empty.indexOf('"Files": [') + '"Files": ['.length;
  const tail = empty.slice(filesAt, empty.lastIndexOf('"Manifest-Checksum"'));
  const sha = createHash('sha256');
  let text = empty.slice(0, filesAt);
  const files = input.files instanceof Map ? input.files.values() : input.files;
  let first = true;
  for (const f of files) {
    text += (first ? '\n' : ',\n') + fileLine(f, input.forceEncode ?? false);
    first = false;
    if (text.length >= pieceSize / 4) {
      // A UTF-8 char is at most 4 bytes: flushing at a quarter keeps pieces near pieceSize at most.
      const piece = Buffer.from(text, 'utf8');
      sha.update(piece);
      yield piece;
      text = '';
    }
  }
  const last = Buffer.from(text + tail, 'utf8');
  sha.update(last);
  yield Buffer.concat([last, Buffer.from(`"Manifest-Checksum": "${sha.digest('hex')}"}\n`)]);
}
