import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalSpool } from '../../../src/wal/wal-spool';
import { defaultSpoolParent, memoryFilesystem, spoolBudget } from '../../../src/wal/spool-place';
import { ProtocolError } from '../../../src/errors';

/** Small segments keep the files small; the spool takes any size. */
const SEG = 64 * 1024;

/** Deterministic "WAL": byte i of the stream is a function of its LSN. */
function walBytes(from: bigint, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = Number((from + BigInt(i)) % 251n);
  return b;
}

async function withSpool(fn: (s: WalSpool) => Promise<void>): Promise<void> {
  const parent = await fs.mkdtemp(join(tmpdir(), 'pgbb-spool-test-'));
  const s = WalSpool.create(parent);
  try {
    await fn(s);
  } finally {
    s.remove();
    await fs.rm(parent, { recursive: true, force: true });
  }
}

test('segments named for timeline and LSN, pre-sized, complete ones flagged, tail zero', () =>
  withSpool(async (s) => {
    const start = BigInt(3 * SEG) + 0x1_0000_0000n; // log 1, a segment boundary
    s.begin(start, 2, SEG);
    const total = 2 * SEG + 1000; // two whole segments and 1000 bytes of a third
    // Messages of odd sizes that straddle segment boundaries.
    let at = 0;
    for (const size of [5000, 70_000, 1, SEG - 6001 + 100, 30_000]) {
      const n = Math.min(size, total - at);
      s.write(start + BigInt(at), walBytes(start + BigInt(at), n));
      at += n;
    }
    s.write(start + BigInt(at), walBytes(start + BigInt(at), total - at));
    assert.equal(s.position, start + BigInt(total));
    assert.equal(s.completedUpTo, start + BigInt(2 * SEG));
    assert.equal(s.received, total);
    const sum = s.summary();
    const perLog = 0x1_0000_0000 / SEG;
    const name = (i: number) =>
      '00000002' + '00000001' + (3 + i).toString(16).toUpperCase().padStart(8, '0');
    assert.ok(perLog > 6);
    assert.deepEqual(
      sum.segments.map((x) => [x.name, x.complete]),
      [
        [name(0), true],
        [name(1), true],
        [name(2), false],
      ],
    );
    assert.equal(sum.start, start);
    assert.equal(sum.end, start + BigInt(total));
    assert.equal(sum.bytes, total);
    for (let i = 0; i < 3; i++) {
      const data = await fs.readFile(sum.segments[i].path);
      assert.equal(data.length, SEG, 'every segment file is a whole segment');
      const segStart = start + BigInt(i * SEG);
      const have = Math.min(SEG, total - i * SEG);
      assert.ok(data.subarray(0, have).equals(walBytes(segStart, have)), `segment ${i} content`);
      assert.ok(data.subarray(have).every((b) => b === 0), `segment ${i} tail is zero`);
    }
  }));

test('stretches of zeros (a switched segment\'s padding) are not written: the file reads the same and holds only the pages with data', () =>
  withSpool(async (s) => {
    s.begin(0n, 1, SEG);
    const want = Buffer.alloc(SEG);
    want.fill(7, 0, 100); // the switch record's end
    want[20_000] = 9; // one byte inside page 2
    want[8191] = 0; // page 0 ends in zeros; page 1 is all zero
    // Odd message sizes: zero pages inside a message, a message that starts mid-page.
    let at = 0;
    for (const size of [60, 9000, 11_000, 5, 30_000]) {
      s.write(BigInt(at), want.subarray(at, at + size));
      at += size;
    }
    s.write(BigInt(at), want.subarray(at));
    const [seg] = s.summary().segments;
    assert.equal(seg.complete, true);
    const data = await fs.readFile(seg.path);
    assert.ok(data.equals(want), 'content as received');
    const st = await fs.stat(seg.path);
    // Pages 0 and 2 only (8 KiB each); writing the zeros would allocate all 64 KiB.
    assert.ok(st.blocks * 512 <= 2 * 8192, `${st.blocks * 512} bytes allocated`);
  }));

test('a message ending exactly at a boundary completes the segment without opening the next', () =>
  withSpool(async (s) => {
    s.begin(0n, 1, SEG);
    s.write(0n, walBytes(0n, SEG));
    const sum = s.summary();
    assert.equal(sum.segments.length, 1);
    assert.equal(sum.segments[0].complete, true);
    assert.deepEqual((await fs.readdir(s.dir)).sort(), ['000000010000000000000000', 'archive_status']);
    assert.deepEqual(await fs.readdir(join(s.dir, 'archive_status')), ['000000010000000000000000.done']);
  }));

test('gaps, overlaps and unaligned starts are refused', () =>
  withSpool(async (s) => {
    assert.throws(() => s.write(0n, Buffer.alloc(1)), /before streaming began/);
    assert.throws(() => s.begin(100n, 1, SEG), /segment boundary/);
    s.begin(BigInt(SEG), 1, SEG);
    assert.throws(() => s.write(BigInt(SEG) + 8n, Buffer.alloc(8)), ProtocolError);
    s.write(BigInt(SEG), Buffer.alloc(8, 1));
    assert.throws(() => s.write(BigInt(SEG), Buffer.alloc(8)), /jumped: got data at 0\/10000, expected 0\/10008/);
  }));

test('history file and remove()', async () => {
  const s = WalSpool.create();
  s.writeHistory('00000002.history', '1\t0/3000060\tno recovery target specified\n');
  s.begin(0n, 2, SEG);
  s.write(0n, Buffer.alloc(10, 1));
  const sum = s.summary();
  assert.equal(sum.history?.name, '00000002.history');
  assert.equal(await fs.readFile(sum.history!.path, 'utf8'), '1\t0/3000060\tno recovery target specified\n');
  s.remove();
  assert.ok(!existsSync(s.dir));
  s.remove(); // twice is fine
  s.write(10n, Buffer.alloc(10, 1)); // a message still in flight: dropped, nothing recreated
  assert.ok(!existsSync(s.dir));
});

async function scratch(): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), 'pgbb-spool-test-'));
}

test('in place: .partial while a segment fills, renamed when complete, the last one renamed at finish', async () => {
  const root = await scratch();
  try {
    const walDir = join(root, 'pg_wal');
    const s = WalSpool.inPlace(walDir);
    s.begin(0n, 1, SEG);
    s.write(0n, walBytes(0n, SEG - 1));
    assert.deepEqual((await fs.readdir(walDir)).sort(), ['000000010000000000000000.partial', 'archive_status']);
    s.write(BigInt(SEG - 1), walBytes(BigInt(SEG - 1), 2));
    assert.deepEqual((await fs.readdir(walDir)).sort(), ['000000010000000000000000', '000000010000000000000001.partial', 'archive_status']);
    assert.deepEqual(await fs.readdir(join(walDir, 'archive_status')), ['000000010000000000000000.done']);
    s.finish();
    const sum = s.summary();
    assert.equal(sum.inPlace, true);
    assert.deepEqual(sum.segments.map((x) => [x.path, x.complete]), [
      [join(walDir, '000000010000000000000000'), true],
      [join(walDir, '000000010000000000000001'), false],
    ]);
    assert.deepEqual((await fs.readdir(walDir)).sort(), ['000000010000000000000000', '000000010000000000000001', 'archive_status']);
    const last = await fs.readFile(join(walDir, '000000010000000000000001'));
    assert.equal(last.length, SEG);
    assert.equal(last[0], walBytes(BigInt(SEG), 1)[0]);
    assert.ok(last.subarray(1).every((b) => b === 0));
    s.keep();
    s.remove();
    assert.equal((await fs.readdir(walDir)).length, 3, 'kept: remove() after keep() leaves the WAL');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('in place: remove() takes back what it made, keeps what was there, never follows a planted link', async () => {
  const root = await scratch();
  try {
    const walDir = join(root, 'pg_wal');
    await fs.mkdir(join(walDir, 'archive_status'), { recursive: true });
    // A backup being refreshed: its own last segment, which the new stream's first one is (same WAL, more of it).
    writeFileSync(join(walDir, '000000010000000000000000'), Buffer.alloc(SEG, 7));
    writeFileSync(join(walDir, 'other'), 'x');
    // A killed run's leftover .partial, here a symlink pointing out: it must be replaced, not written through.
    const outside = join(root, 'outside');
    writeFileSync(outside, 'keep me');
    symlinkSync(outside, join(walDir, '000000010000000000000001.partial'));
    const s = WalSpool.inPlace(walDir);
    s.begin(0n, 1, SEG);
    s.write(0n, walBytes(0n, SEG + 100));
    assert.equal(await fs.readFile(outside, 'utf8'), 'keep me', 'the link was not followed');
    assert.ok((await fs.readFile(join(walDir, '000000010000000000000000'))).equals(walBytes(0n, SEG)));
    s.remove();
    assert.deepEqual((await fs.readdir(walDir)).sort(), ['000000010000000000000000', 'archive_status', 'other']);
    assert.deepEqual(await fs.readdir(join(walDir, 'archive_status')), []);
    assert.equal(await fs.readFile(outside, 'utf8'), 'keep me');

    // Directories it created go too; a pg_wal that is a symlink is refused before anything is written.
    const fresh = join(root, 'fresh');
    await fs.mkdir(fresh);
    const s2 = WalSpool.inPlace(join(fresh, 'pg_wal'));
    s2.begin(0n, 1, SEG);
    s2.write(0n, Buffer.alloc(10));
    s2.remove();
    assert.deepEqual(await fs.readdir(fresh), []);
    const linked = join(root, 'linked');
    await fs.mkdir(linked);
    symlinkSync(outside, join(linked, 'pg_wal'));
    assert.throws(() => WalSpool.inPlace(join(linked, 'pg_wal')), /is not a directory/);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a spool is bounded: memory-backed filesystems are recognized, the default avoids them, a full budget fails clearly', async () => {
  assert.equal(memoryFilesystem(tmpdir()), null, 'the test machine keeps os.tmpdir() on disk');
  assert.equal(spoolBudget(tmpdir()), Infinity);
  assert.equal(memoryFilesystem('/dev/shm'), 'tmpfs', 'the test needs the usual tmpfs at /dev/shm');
  const budget = spoolBudget('/dev/shm');
  assert.ok(Number.isFinite(budget) && budget > 0, `${budget}`);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/dev/shm';
  try {
    assert.equal(defaultSpoolParent(), '/var/tmp');
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  const s = WalSpool.create('/dev/shm', { maxBytes: 2 * SEG });
  try {
    assert.equal(s.memoryBacked, 'tmpfs');
    s.begin(0n, 1, SEG);
    s.write(0n, Buffer.alloc(2 * SEG));
    assert.throws(() => s.write(BigInt(2 * SEG), Buffer.alloc(1)), /WAL spool "\/dev\/shm\/pgbb-wal-[\w.-]+" is on a memory-backed filesystem \(tmpfs\) and would grow past its limit of 0\.1 MiB: put it on disk \(--wal-spool DIR with -D -, or a target on disk\)/);
  } finally {
    s.remove();
  }
  assert.ok(!existsSync(s.dir));
});
