/**
 * Tests for checkWalRange (src/codec/wal-continuity.ts) on synthetic WAL
 * laid out as PostgreSQL writes it (test/support/wal-builder.ts): records
 * that cross pages and segments, a record header split across pages, and the
 * damage it must name (checksum, back-pointer, continuation, missing segment).
 * The fixtures named "(fuzz regression)" pin bugs test/fuzz/wal.test.ts found.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWalRange, WalError, type WalCheckOptions } from '../../../src/codec/wal-continuity';
import { walFileName } from '../../../src/codec/lsn';
import { buildWal, PAGE, SEGMENT, type BuiltWal } from '../../support/wal-builder';

function options(w: BuiltWal, over: Partial<WalCheckOptions> = {}): WalCheckOptions {
  return {
    timeline: w.timeline,
    startLsn: w.startLsn,
    endLsn: w.endLsn,
    segmentSize: SEGMENT,
    readSegment: (name) => w.segments.get(name) ?? null,
    ...over,
  };
}

function at(w: BuiltWal, lsn: bigint): { buf: Buffer; off: number } {
  const buf = w.segments.get(walFileName(w.timeline, lsn, SEGMENT))!;
  return { buf, off: Number(lsn % BigInt(SEGMENT)) };
}

test('a chain of records crossing pages and a segment boundary checks out (fuzz regression: xlp_rem_len is at offset 16)', () => {
  // Before the fix the continuation check read xlp_rem_len at offset 20 (padding,
  // always 0), so every record that crossed a page was reported as broken.
  const sizes = [100, 9000, 50, 20000, 24, 300000, 70, 800000, 33];
  const w = buildWal({ sizes });
  assert.ok(w.segments.size >= 2, 'the chain spans segments');
  const r = checkWalRange(options(w));
  assert.equal(r.records, sizes.length);
  assert.equal(r.endOfLastRecord, w.endLsn);
  assert.equal(r.segments.length, w.segments.size);
});

test('a record whose header is split across two pages is read whole', () => {
  // 40-byte long header + 8144 bytes: the second record starts 8 bytes before the page end.
  const w = buildWal({ sizes: [8144, 100, 60] });
  assert.equal(Number(w.lsns[1] % BigInt(PAGE)), PAGE - 8);
  assert.equal(checkWalRange(options(w)).records, 3);
});

test('a corrupt record length of nearly 1 GiB allocates nothing (fuzz regression)', () => {
  // Before the fix the record was copied whole: Buffer.allocUnsafe(totLen).
  const w = buildWal({ sizes: [100, 200, 300] });
  const { buf, off } = at(w, w.lsns[1]);
  buf.writeUInt32LE(1024 * 1024 * 1024 - 8, off);
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(() => checkWalRange(options(w)), WalError);
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 1024 * 1024, `grew by ${grown} bytes`);
});

test('damage is a WalError naming the segment and LSN', () => {
  const fixtures: Array<[string, (w: BuiltWal) => void, RegExp]> = [
    ['a flipped data byte', (w) => (at(w, w.lsns[2]).buf[at(w, w.lsns[2]).off + 30] ^= 1), /^incorrect record checksum at 0\/[0-9A-F]+ in WAL segment 000000010000000000000002$/],
    ['a wrong back-pointer', (w) => at(w, w.lsns[2]).buf.writeBigUInt64LE(w.lsns[0], at(w, w.lsns[2]).off + 8), /points back to .*, expected /],
    ['a continuation page with the wrong remaining length', (w) => {
      const page = (w.lsns[1] / BigInt(PAGE) + 1n) * BigInt(PAGE);
      at(w, page).buf.writeUInt32LE(5, at(w, page).off + 16);
    }, /continues into 0\/[0-9A-F]+ but that page does not continue it/],
    ['a zeroed record', (w) => at(w, w.lsns[3]).buf.fill(0, at(w, w.lsns[3]).off, at(w, w.lsns[3]).off + 24), /^WAL ends at /],
  ];
  for (const [name, damage, message] of fixtures) {
    const w = buildWal({ sizes: [100, 9000, 50, 70, 80] });
    damage(w);
    assert.throws(() => checkWalRange(options(w)), (e: Error) => e instanceof WalError && message.test(e.message), name);
  }
  const w = buildWal({ sizes: [100, 2 * SEGMENT, 50] });
  const missing = walFileName(1, w.lsns[2], SEGMENT);
  w.segments.delete(missing);
  assert.throws(() => checkWalRange(options(w)), (e: Error) => e instanceof WalError && e.message.startsWith(`WAL segment ${missing} is missing`));
});
