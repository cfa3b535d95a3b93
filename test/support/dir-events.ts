/**
 * dirEvents: a stopped data directory as a member stream, for tests that need
 * a source which does not check page checksums itself (there is no local
 * source yet).
 *
 * In:  a data directory and the facts a real source would report (start LSN;
 *      server version, block size, segment blocks default from PG_VERSION
 *      and PostgreSQL's defaults).
 * Out: start, one `tablespace` archive per pg_tblspc/<oid> symlink (paths
 *      relative to its location, location = the link target), then `base`
 *      (pg_tblspc/<oid> as symlink entries, pg_wal's contents left out as the
 *      server does), each as entry / data (fresh buffers of `chunkSize`,
 *      default 32 KiB, at their file offsets) / entry-end, then end.
 *      Entries come in sorted order so runs are repeatable.
 * Errors: file system errors, as the stream's error.
 */
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import type { BackupEvent, Tablespace } from '../../src/events';

export interface DirEventsOptions {
  /** The backup's start LSN, `X/X`. */
  startLsn: string;
  serverVersion?: number;
  blockSize?: number;
  segmentBlocks?: number;
  dataChecksums?: boolean;
  chunkSize?: number;
}

export function dirEvents(dataDir: string, opts: DirEventsOptions): Readable {
  return Readable.from(generate(dataDir, opts), { objectMode: true, highWaterMark: 16 });
}

async function* generate(dataDir: string, opts: DirEventsOptions): AsyncGenerator<BackupEvent> {
  const major = Number((await fs.readFile(join(dataDir, 'PG_VERSION'), 'utf8')).trim());
  const tablespaces: Tablespace[] = [];
  for (const oid of (await fs.readdir(join(dataDir, 'pg_tblspc')).catch(() => [] as string[])).sort()) {
    const link = join(dataDir, 'pg_tblspc', oid);
    if ((await fs.lstat(link)).isSymbolicLink()) tablespaces.push({ oid, location: await fs.readlink(link), size: null });
  }
  yield {
    type: 'start',
    serverVersion: opts.serverVersion ?? major * 10000,
    systemIdentifier: '0',
    timeline: 1,
    startLsn: opts.startLsn,
    tablespaces: [...tablespaces, { oid: null, location: '', size: null }],
    walSegmentSize: 16 * 1024 * 1024,
    blockSize: opts.blockSize ?? 8192,
    segmentBlocks: opts.segmentBlocks ?? 131072,
    dataChecksums: opts.dataChecksums ?? true,
    label: 'dir-events',
    totalBytes: null,
  };
  const chunkSize = opts.chunkSize ?? 32 * 1024;
  for (const ts of tablespaces) {
    yield { type: 'archive', kind: 'tablespace', name: ts.oid!, location: ts.location };
    yield* tree(ts.location, ts.location, chunkSize);
    yield { type: 'archive-end' };
  }
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  yield* tree(dataDir, dataDir, chunkSize);
  yield { type: 'archive-end' };
  yield { type: 'end', endLsn: opts.startLsn, timeline: 1 };
}

async function* tree(root: string, dir: string, chunkSize: number): AsyncGenerator<BackupEvent> {
  for (const name of (await fs.readdir(dir)).sort()) {
    const full = join(dir, name);
    const path = relative(root, full);
    const st = await fs.lstat(full);
    const common = { path, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isSymbolicLink()) {
      yield { type: 'entry', kind: 'symlink', size: 0, linkTarget: await fs.readlink(full), ...common };
      yield { type: 'entry-end' };
    } else if (st.isDirectory()) {
      yield { type: 'entry', kind: 'directory', size: 0, ...common };
      yield { type: 'entry-end' };
      if (path !== 'pg_wal') yield* tree(root, full, chunkSize);
    } else if (st.isFile()) {
      yield { type: 'entry', kind: 'file', size: st.size, ...common };
      const fh = await fs.open(full, 'r');
      try {
        for (let offset = 0; offset < st.size; ) {
          const chunk = Buffer.allocUnsafe(Math.min(chunkSize, st.size - offset));
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, offset);
          if (bytesRead === 0) break;
          yield { type: 'data', offset, chunk: chunk.subarray(0, bytesRead) };
          offset += bytesRead;
        }
      } finally {
        await fh.close();
      }
      yield { type: 'entry-end' };
    }
  }
}
