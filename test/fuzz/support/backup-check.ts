/**
 * What the source fuzz targets (../targets/sources.ts) check about a backup
 * read back, and where they aim their edits:
 *
 *   memberChecker()    a Writable end of the pipeline that asserts the
 *                      member-stream contract of src/events.ts as events
 *                      pass (start first, entries inside archives, data
 *                      offsets contiguous, end last), and collects every
 *                      regular file's bytes by its manifest path
 *                      (`pg_tblspc/<oid>/…` for tablespace members)
 *   sameFiles(a, b)    asserts two such collections hold the same files
 *                      with the same bytes
 *   fileRegions(tar)   where each regular file's data lies in an
 *                      uncompressed tar — read here with a few lines of
 *                      ustar + pax `path`, not with pgbb's tar parser, so a
 *                      bug there cannot hide where the edit went
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { BackupEvent } from '../../../src/events';

export type Files = Map<string, Buffer>;

export interface MemberChecker extends Writable {
  /** Regular files by manifest path, complete once the pipeline has resolved. */
  readonly files: Files;
}

export function memberChecker(): MemberChecker {
  let state: 'before' | 'top' | 'archive' | 'entry' | 'ended' = 'before';
  let next = 0;
  let size = 0;
  let prefix = '';
  let current: { path: string; chunks: Buffer[] } | null = null;
  const files: Files = new Map();
  const w = new Writable({
    objectMode: true,
    write(ev: BackupEvent, _e, cb) {
      try {
        if (ev.type === 'progress' || ev.type === 'warning') return cb();
        if (state === 'before') assert.equal(ev.type, 'start', 'start comes first');
        else assert.notEqual(state, 'ended', 'nothing after end');
        switch (ev.type) {
          case 'start':
            assert.equal(state, 'before');
            state = 'top';
            break;
          case 'archive':
            assert.equal(state, 'top', 'archive at the top level');
            prefix = ev.kind === 'tablespace' ? `pg_tblspc/${ev.name}/` : ev.kind === 'wal' ? 'pg_wal/' : '';
            state = 'archive';
            break;
          case 'entry':
            assert.equal(state, 'archive', 'entry inside an archive');
            assert.ok(ev.path.length > 0 && Number.isSafeInteger(ev.size) && ev.size >= 0);
            state = 'entry';
            next = 0;
            size = ev.size;
            current = ev.kind === 'file' ? { path: prefix + ev.path, chunks: [] } : null;
            break;
          case 'data':
            assert.equal(state, 'entry', 'data inside an entry');
            assert.equal(ev.offset, next, 'contiguous data');
            next += ev.chunk.length;
            assert.ok(next <= size, 'no more data than the entry size');
            current?.chunks.push(Buffer.from(ev.chunk));
            break;
          case 'entry-end':
            assert.equal(state, 'entry');
            assert.equal(next, size, 'the whole entry before entry-end');
            if (current) files.set(current.path, Buffer.concat(current.chunks));
            state = 'archive';
            break;
          case 'archive-end':
            assert.equal(state, 'archive');
            state = 'top';
            break;
          case 'manifest':
            assert.equal(state, 'top');
            break;
          case 'end':
            assert.equal(state, 'top');
            state = 'ended';
            break;
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    final(cb) {
      cb(state === 'ended' ? null : new assert.AssertionError({ message: `the source stopped without an error in state ${state}` }));
    },
  });
  return Object.assign(w, { files });
}

export function sameFiles(got: Files, want: Files, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: the same files`);
  for (const [path, data] of want) assert.ok(got.get(path)!.equals(data), `${what}: "${path}" has the bytes it was backed up with`);
}

export interface FileRegion {
  /** The member's name in this tar. */
  path: string;
  /** Offset of its first data byte. */
  at: number;
  size: number;
}

/** Regular members with data, in an uncompressed tar (ustar name/prefix, or a preceding pax `path`). */
export function fileRegions(tar: Buffer): FileRegion[] {
  const out: FileRegion[] = [];
  let paxPath: string | null = null;
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const field = (at: number, len: number) => {
      const end = h.indexOf(0, at);
      return h.toString('latin1', at, end < 0 || end > at + len ? at + len : end);
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const data = off + 512;
    if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(tar.toString('latin1', data, data + size));
      paxPath = m ? m[1]! : null;
    } else {
      const prefix = field(345, 155);
      const name = paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
      if ((type === '0' || type === '\0') && size > 0) out.push({ path: name, at: data, size });
      paxPath = null;
    }
    off = data + Math.ceil(size / 512) * 512;
  }
  return out;
}
