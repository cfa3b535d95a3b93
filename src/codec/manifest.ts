/**
 * backup_manifest codec: pure functions, no streams.
 *
 *   parseManifest(bytes) -> Manifest      checks the JSON, the layout rules of
 *                                         src/common/parse_manifest.c and the
 *                                         trailing SHA-256 Manifest-Checksum
 *   buildManifest(input) -> bytes         what src/backend/backup/backup_manifest.c
 *                                         writes, byte for byte
 *   walRangesFor                          the WAL-Ranges PostgreSQL computes
 * (Types and shared pieces: ./manifest-format.ts; the writer: ./manifest-writer.ts;
 * per-file digests while events flow: src/manifest/file-tracker.ts.)
 *
 * Layout PostgreSQL writes (13–16 version 1; 17+ version 2 with line 2):
 *   { "PostgreSQL-Backup-Manifest-Version": 1,\n
 *   "System-Identifier": 7710713033429169987,\n           (version 2 only)
 *   "Files": [\n{ "Path": …, "Size": N, "Last-Modified": "…", "Checksum-Algorithm": "CRC32C", "Checksum": "…" },\n{ … }\n],\n
 *   "WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n
 *   "Manifest-Checksum": "<sha256 of every byte above, lowercase hex>"}\n
 *
 * Paths are pgbb path strings (src/codec/path-bytes.ts): UTF-8, with the bytes of a
 * non-UTF-8 file name carried as lone surrogates, exactly as the tar parser
 * decodes member names, so manifest keys and member paths compare equal.
 * buildManifest takes such a string or a Buffer of raw bytes and writes
 * "Encoded-Path" (lowercase hex of the bytes) when they are not valid UTF-8,
 * exactly as the server does, else "Path". parseManifest decodes an
 * Encoded-Path to its bytes (`rawPath`, which buildManifest writes as
 * Encoded-Path again) and keys the file by pathFromBytes of them.
 * Errors: ManifestError, message starting "backup_manifest: ".
 */
import type { Manifest, ManifestFile } from './manifest-format';
import { ManifestReader } from './manifest-reader';

export * from './manifest-format';
export { buildManifest, ManifestWriter, MANIFEST_PIECE_SIZE, type ManifestWriterOptions } from './manifest-writer';
export { walRangesFor } from './wal-ranges';
export { ManifestReader, type ManifestReaderOptions, type ManifestSummary, type PathSet } from './manifest-reader';

/** A whole manifest at once (see ./manifest-reader.ts for the checks, and for reading one in pieces). */
export function parseManifest(buf: Buffer): Manifest {
  const files = new Map<string, ManifestFile>();
  const reader = new ManifestReader({ paths: { add: (p) => !files.has(p) }, onFile: (f) => void files.set(f.path, f) });
  reader.write(buf);
  const { version, systemIdentifier, walRanges } = reader.end();
  const manifest: Manifest = { version, files, walRanges };
  if (systemIdentifier !== undefined) manifest.systemIdentifier = systemIdentifier;
  return manifest;
}
