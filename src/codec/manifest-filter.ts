/**
 * A backup_manifest without some of its files: read as it comes
 * (./manifest-reader.ts), written again by ./manifest-writer.ts, so the
 * result has its own Manifest-Checksum and is byte for byte what the server
 * would have written had the files not been there. Pure.
 *
 *   const f = new ManifestFilter((path) => path === 'tablespace_map');
 *   f.write(piece); …
 *   const pieces = f.end();     the whole manifest, the dropped entries left out
 *
 * Memory: the reader's (one record per path) and the writer's (the text
 * written, which is never more than the manifest read).
 * Errors: ManifestError, as the reader's; and when a version 2 manifest
 * lists files before its System-Identifier (PostgreSQL never does), which
 * the writer needs first.
 */
import { ManifestError } from '../errors';
import { ManifestReader } from './manifest-reader';
import { ManifestWriter } from './manifest-writer';
import type { ManifestFile } from './manifest-format';

export class ManifestFilter {
  private readonly reader: ManifestReader;
  private writer: ManifestWriter | null = null;

  constructor(private readonly drop: (path: string) => boolean) {
    this.reader = new ManifestReader({ onFile: (f) => this.file(f) });
  }

  write(piece: Buffer): void {
    this.reader.write(piece);
  }

  end(): Buffer[] {
    const summary = this.reader.end();
    return this.writerFor(summary).finish(summary.walRanges);
  }

  private file(f: ManifestFile): void {
    if (this.drop(f.path)) return;
    this.writerFor(this.reader.header()).file(f);
  }

  private writerFor(header: { version: unknown; systemIdentifier?: string }): ManifestWriter {
    if (this.writer) return this.writer;
    const { version, systemIdentifier } = header;
    if (version !== 1 && version !== 2) throw new ManifestError(`backup_manifest: unexpected manifest version ${String(version)} (pgbb reads 1 and 2)`);
    if (version === 2 && systemIdentifier === undefined) {
      throw new ManifestError('backup_manifest: lists files before its System-Identifier: cannot write it again without some of them');
    }
    this.writer = new ManifestWriter({ version, ...(systemIdentifier !== undefined ? { systemIdentifier } : {}) });
    return this.writer;
  }
}
