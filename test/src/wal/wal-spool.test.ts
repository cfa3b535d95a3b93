import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalSpool } from '../../../src/wal/wal-spool';
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
  const s = await WalSpool.create(parent);
  try {
    await fn(s);
  } finally {
    await s.remove();
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

test('a message ending exactly at a boundary completes the segment without opening the next', () =>
  withSpool(async (s) => {
    s.begin(0n, 1, SEG);
    s.write(0n, walBytes(0n, SEG));
    const sum = s.summary();
    assert.equal(sum.segments.length, 1);
    assert.equal(sum.segments[0].complete, true);
    assert.deepEqual(await fs.readdir(s.dir), ['000000010000000000000000']);
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
  const s = await WalSpool.create();
  await s.writeHistory('00000002.history', '1\t0/3000060\tno recovery target specified\n');
  s.begin(0n, 2, SEG);
  s.write(0n, Buffer.alloc(10, 1));
  const sum = s.summary();
  assert.equal(sum.history?.name, '00000002.history');
  assert.equal(await fs.readFile(sum.history!.path, 'utf8'), '1\t0/3000060\tno recovery target specified\n');
  await s.remove();
  assert.ok(!existsSync(s.dir));
  await s.remove(); // twice is fine
});
