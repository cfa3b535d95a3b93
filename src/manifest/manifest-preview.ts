/**
 * manifest-preview: one pass over a backup_manifest that is at hand before
 * the backup's files (a backup directory's own), keeping only what the
 * checks want up front — never the manifest itself, which the stream brings
 * again at its end and the check reads there:
 *
 *   algorithm    the checksum algorithm its first file entry names (so the
 *                files are digested with it as they go by; NONE for none)
 *   listedBytes  the sum of the sizes it lists (a total for -P)
 *   sizes        with `sizes`: each listed path's size (restore refuses an
 *                unlisted or resized file at its entry, before its bytes)
 *
 * Memory: the reader's entry in progress; with `sizes` one compact record a
 * listed file (src/codec/file-table.ts), which is also what refuses a
 * duplicate path, and which manifest-verify then records the files seen in
 * (its listedSizes), so a restore holds one table, not two. Without it duplicates are not looked for here (the
 * streamed check does that at the end), so nothing per file is held.
 *
 * Returns null for a manifest that does not parse (the streamed check reports
 * it where it comes) or none at all (no pieces). Errors reading the pieces
 * pass through.
 */
import { ManifestError } from '../errors';
import { ManifestReader, type ChecksumAlgorithm } from '../codec/manifest';
import { FileTable } from '../codec/file-table';

export interface ManifestPreview {
  algorithm: ChecksumAlgorithm;
  listedBytes: number;
  /** Listed path → size; null unless asked for. */
  sizes: FileTable | null;
}

const ANY_PATH = { add: () => true };

export async function previewManifest(pieces: AsyncIterable<Buffer>, o: { sizes?: boolean } = {}): Promise<ManifestPreview | null> {
  let first: ChecksumAlgorithm | undefined;
  let listedBytes = 0;
  let seen = false;
  const sizes = o.sizes ? new FileTable(0) : null;
  let last = -1;
  const paths = sizes
    ? {
        add: (p: string) => {
          const r = sizes.add(p);
          last = r.index;
          return r.added;
        },
      }
    : ANY_PATH;
  const reader = new ManifestReader({
    paths,
    onFile: (f) => {
      first ??= f.checksumAlgorithm;
      listedBytes += f.size;
      if (sizes) sizes.setSize(last, f.size);
    },
  });
  try {
    for await (const piece of pieces) {
      seen = true;
      reader.write(piece);
    }
    if (!seen) return null;
    reader.end();
  } catch (err) {
    if (err instanceof ManifestError) return null;
    throw err;
  }
  return { algorithm: first ?? 'NONE', listedBytes, sizes };
}
