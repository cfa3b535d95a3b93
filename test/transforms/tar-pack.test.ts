/**
 * Tests for tarPack() (transforms/tar-pack.ts): the `-D -` layout read back
 * by another reader (tar-stream), output batched into ≥ 256 KiB chunks with
 * large data by reference, no end-of-archive marker without `end`, the
 * manifest held in memory or (past 8 MiB) in a temporary file that never
 * outlives the stream, the per-archive layout, and a UsageError for bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import type { BackupEvent } from '../../src/events';
import { PgbbError, TarFormatError, UsageError } from '../../src/errors';
import { decodeDescriptor } from '../../src/codec/backup-descriptor';
import { manifestBuild } from '../../transforms/manifest-build';
import { BATCH_BYTES, tarPack, type TarPackOptions } from '../../transforms/tar-pack';
import { file, sampleEvents } from '../support/synthetic-backup';

interface Member {
  name: string;
  type: string;
  size: number;
  linkname?: string | null;
  comment?: string;
  data: Buffer;
}

async function pack(events: BackupEvent[], opts?: TarPackOptions): Promise<{ bytes: Buffer; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from(events), tarPack(opts), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  return { bytes: Buffer.concat(chunks), chunks };
}

async function readTar(bytes: Buffer): Promise<Member[]> {
  const out: Member[] = [];
  const ex = tarStream.extract();
  ex.on('entry', (h, s, next) => {
    const parts: Buffer[] = [];
    s.on('data', (c: unknown) => parts.push(c as Buffer));
    s.on('end', () => {
      const pax = (h as unknown as { pax?: Record<string, string> }).pax;
      out.push({ name: h.name.replace(/\/$/, ''), type: h.type ?? '', size: h.size ?? 0, linkname: h.linkname, comment: pax?.comment, data: Buffer.concat(parts) });
      next();
    });
  });
  await pipeline(Readable.from([bytes]), ex);
  return out;
}

/** The sample backup, with a 1 MiB file and the manifest manifest-build makes. */
async function withManifest(extra: BackupEvent[] = []): Promise<BackupEvent[]> {
  const evs = sampleEvents();
  const baseEnd = evs.findIndex((e) => e.type === 'archive-end');
  evs.splice(baseEnd, 0, ...extra);
  const out: BackupEvent[] = [];
  await pipeline(Readable.from(evs), manifestBuild(), new Writable({ objectMode: true, write: (e: BackupEvent, _x, cb) => (out.push(e), cb()) }));
  return out;
}

const big = Buffer.alloc(1 << 20, 0x61);

test('the -D - layout: descriptor on the first member, tablespace inline without its link, manifest last, end marker', async () => {
  const events = await withManifest(file('base/1/big', big));
  const { bytes } = await pack(events);
  const members = await readTar(bytes);
  const d = decodeDescriptor(members[0]!.comment);
  assert.ok(d, 'the first member carries the descriptor');
  assert.equal(d.systemIdentifier, '7350000000000000001');
  const names = members.map((m) => m.name);
  assert.ok(names.includes('pg_tblspc/16385'), 'the tablespace is a directory');
  assert.equal(members.find((m) => m.name === 'pg_tblspc/16385')!.type, 'directory');
  assert.ok(names.includes('pg_tblspc/16385/PG_15_202209061/1/16390'));
  assert.ok(!members.some((m) => m.type === 'symlink' && m.name === 'pg_tblspc/16385'), 'base\'s link is left out');
  assert.equal(names[names.length - 1], 'backup_manifest');
  const manifest = events.filter((e) => e.type === 'manifest').map((e) => (e as { data: Buffer }).data);
  assert.deepEqual(members[members.length - 1]!.data, Buffer.concat(manifest));
  assert.deepEqual(members.find((m) => m.name === 'base/1/big')!.data, big);
  assert.ok(bytes.subarray(-1024).equals(Buffer.alloc(1024)), 'ends with the end-of-archive marker');
});

test('data chunks from BY_REFERENCE bytes go out by reference; headers, padding and small files are gathered into batches', async () => {
  const huge = Buffer.alloc(3 * BATCH_BYTES, 0x62);
  const small = Array.from({ length: 200 }, (_, i) => file(`base/1/s${i}`, Buffer.alloc(100, i)));
  const events = await withManifest([
    { type: 'entry', path: 'base/1/huge', kind: 'file', size: huge.length, mode: 0o600, mtime: new Date() },
    { type: 'data', offset: 0, chunk: huge },
    { type: 'entry-end' },
    ...file('base/1/big', big),
    ...small.flat(),
  ]);
  const { bytes, chunks } = await pack(events);
  assert.ok(chunks.some((c) => c.buffer === huge.buffer && c.length === huge.length), 'the large chunk was not copied');
  // 200 small files are 200 × (header + padded data) = 200 KiB: a batch or two, not 600 pushes.
  assert.ok(chunks.length < 20, `${chunks.length} chunks`);
  const members = await readTar(bytes);
  assert.deepEqual(members.find((m) => m.name === 'base/1/huge')!.data, huge);
  assert.deepEqual(members.find((m) => m.name === 'base/1/s199')!.data, Buffer.alloc(100, 199));
});

test('a stream that ends without `end` fails and never gets its end-of-archive marker', async () => {
  const events = (await withManifest()).filter((e) => e.type !== 'end');
  const chunks: Buffer[] = [];
  await assert.rejects(
    pipeline(Readable.from(events), tarPack(), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) })),
    (e: unknown) => e instanceof PgbbError && e.code === 'incomplete',
  );
  const bytes = Buffer.concat(chunks);
  assert.ok(!bytes.subarray(-1024).equals(Buffer.alloc(1024)), 'no end-of-archive marker');
});

test('a manifest over 8 MiB goes through an unlinked 0600 temporary file, closed at the end and on destroy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-pack-tmp-'));
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  t.after(() => {
    process.env.TMPDIR = saved;
    if (saved === undefined) delete process.env.TMPDIR;
    rmSync(dir, { recursive: true, force: true });
  });
  const fdsInDir = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false;
    }
  });
  const openInDir = () => fdsInDir().length;
  const piece = Buffer.alloc(1 << 20);
  for (let i = 0; i < piece.length; i++) piece[i] = i % 251;
  const pieces = Array.from({ length: 10 }, () => ({ type: 'manifest', data: piece }) as BackupEvent);
  const events = [...sampleEvents().filter((e) => e.type !== 'end'), ...pieces, { type: 'end', endLsn: '0/2000100', timeline: 1 } as BackupEvent];

  // Whole: the member holds every piece, in order.
  let during = 0;
  const p = tarPack();
  let mode = 0;
  p.on('data', () => {
    during = Math.max(during, openInDir());
    for (const fd of fdsInDir()) mode = statSync(`/proc/self/fd/${fd}`).mode & 0o777;
  });
  const chunks: Buffer[] = [];
  await pipeline(Readable.from(events), p, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  const members = await readTar(Buffer.concat(chunks));
  const m = members[members.length - 1]!;
  assert.equal(m.name, 'backup_manifest');
  assert.equal(m.size, 10 << 20);
  assert.ok(m.data.equals(Buffer.concat(Array(10).fill(piece))));
  assert.equal(during, 1, 'the manifest went to a file in TMPDIR');
  assert.equal(mode, 0o600);
  assert.deepEqual(readdirSync(dir), [], 'no name left in TMPDIR');
  assert.equal(openInDir(), 0, 'closed at the end');

  // Destroyed with the file open: closed.
  const q = tarPack();
  q.resume();
  for (const ev of events.slice(0, -1)) await new Promise<void>((r, j) => q.write(ev, (e) => (e ? j(e) : r())));
  assert.equal(openInDir(), 1);
  q.destroy();
  await new Promise((r) => q.once('close', r));
  assert.equal(openInDir(), 0, 'closed on destroy');
  assert.deepEqual(readdirSync(dir), []);
});

test('archive layout: one archive as its own tar, the descriptor comment first, the marker at archive-end', async () => {
  const evs = sampleEvents();
  const start = evs.findIndex((e) => e.type === 'archive' && e.kind === 'tablespace');
  const end = evs.findIndex((e, i) => i > start && e.type === 'archive-end');
  const archive = [evs[0]!, ...evs.slice(start, end + 1)];
  const { bytes } = await pack(archive, { layout: 'archive' });
  const members = await readTar(bytes);
  assert.deepEqual(members.map((m) => m.name), ['PG_15_202209061', 'PG_15_202209061/1', 'PG_15_202209061/1/16390']);
  assert.ok(decodeDescriptor(members[0]!.comment));
  assert.ok(bytes.subarray(-1024).equals(Buffer.alloc(1024)));
  // Without archive-end: an error, no marker.
  await assert.rejects(pack(archive.slice(0, -1), { layout: 'archive' }), (e: unknown) => e instanceof PgbbError && e.code === 'incomplete');
  // A comment given as an option rides on the first member too.
  const { bytes: b2 } = await pack(archive.slice(1), { layout: 'archive', comment: 'hello' });
  assert.equal((await readTar(b2))[0]!.comment, 'hello');
});

test('data that does not match its header is a TarFormatError', async () => {
  const evs: BackupEvent[] = [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    { type: 'entry', path: 'f', kind: 'file', size: 2, mode: 0o600, mtime: new Date() },
    { type: 'data', offset: 0, chunk: Buffer.from('abc') },
  ];
  await assert.rejects(pack(evs), (e: unknown) => e instanceof TarFormatError && /got 3 bytes but its header says 2/.test((e as Error).message));
});

test('tarPack() given bytes fails with a UsageError naming both stages', async () => {
  class UploadedTar extends Readable {
    override _read(): void {
      this.push(Buffer.alloc(512));
      this.push(null);
    }
  }
  await assert.rejects(
    pipeline(new UploadedTar(), tarPack(), new Writable({ write: (_c, _e, cb) => cb() })),
    (e: unknown) => e instanceof UsageError && /^tarPack\(\) takes member events, it was given bytes from UploadedTar/.test((e as Error).message),
  );
});
