/**
 * Fuzz targets for the small binary and JSON formats pgbb reads from backups:
 *   controlFile  parseControlFile (src/codec/pg-control.ts) on a pg_control laid
 *                out as PostgreSQL 15 writes it, mutated (half the time with
 *                the CRC fixed, so the field checks behind it are reached);
 *                one bit flipped under an unfixed CRC must be refused
 *   descriptor   decodeDescriptor (src/codec/backup-descriptor.ts) on mutated
 *                comments, then what tar-backup-source does with a descriptor
 *                (startFromDescriptor, the tablespace map)
 *   wal          checkWalRange (src/codec/wal-continuity.ts) on synthetic
 *                WAL (test/support/wal-builder.ts) with bytes changed at
 *                record and page headers or anywhere, and with length fields
 *                set to huge values; one bit of a record's data flipped must
 *                be an "incorrect record checksum" naming that record
 */
import assert from 'node:assert/strict';
import { calculate as crc32c } from 'fast-crc32c';
import { parseControlFile } from '../../../src/codec/pg-control';
import { decodeDescriptor, descriptorFromStart, encodeDescriptor, startFromDescriptor } from '../../../src/codec/backup-descriptor';
import { checkWalRange, WalError } from '../../../src/codec/wal-continuity';
import type { StartEvent } from '../../../src/events';
import { formatLsn, walFileName } from '../../../src/codec/lsn';
import { buildWal, PAGE, SEGMENT, type BuiltWal } from '../../support/wal-builder';
import { sampleControlFile } from '../../support/synthetic-backup';
import { mutate, mutateOnce, type Rng } from '../support/random';
import type { FuzzTarget } from '../support/target';
import { sampleStart as syntheticStart } from '../../support/synthetic-backup';

// ---------------------------------------------------------------- pg_control

export const controlFile: FuzzTarget<{ seed: Buffer }> = {
  setup() {
    const seed = sampleControlFile();
    // The seed itself parses, to what test/support/synthetic-backup.ts wrote into it.
    assert.deepEqual(parseControlFile(seed), {
      systemIdentifier: '7350000000000000001',
      blockSize: 8192,
      segmentBlocks: 131072,
      walBlockSize: 8192,
      walSegmentSize: 16 * 1024 * 1024,
      dataChecksums: true,
    });
    return { seed };
  },
  run(rng, ctx) {
    if (rng.chance(0.1)) {
      // One bit flipped under the CRC (PostgreSQL 15's is at 288), CRC left: it must not be read.
      const input = Buffer.from(ctx.seed);
      input[rng.int(288)] ^= 1 << rng.int(8);
      let err: unknown = null;
      try {
        parseControlFile(input, 'fuzz/global/pg_control');
      } catch (e) {
        err = e;
      }
      assert.match(String((err as Error)?.message), /^could not read "fuzz\/global\/pg_control": no valid CRC found/);
      throw err;
    }
    let input = rng.chance(0.05) ? rng.bytes(rng.int(1200)) : mutate(rng, rng.chance(0.5) ? ctx.seed : ctx.seed.subarray(0, 300));
    if (rng.chance(0.5) && input.length >= 292) {
      input = Buffer.from(input);
      input.writeUInt32LE(crc32c(input.subarray(0, 288)) >>> 0, 288);
    }
    const c = parseControlFile(input, 'fuzz/global/pg_control');
    assert.match(c.systemIdentifier, /^\d+$/);
    for (const v of [c.blockSize, c.segmentBlocks, c.walBlockSize, c.walSegmentSize]) assert.ok(Number.isSafeInteger(v) && v > 0);
  },
};

// ---------------------------------------------------------------- descriptor

/** The synthetic backup's start, with a second tablespace whose location is long and a label that needs escaping. */
export function sampleStart(): StartEvent {
  const base = syntheticStart('/srv/ts');
  return {
    ...base,
    tablespaces: [base.tablespaces[0], { oid: '16386', location: `/${'long/'.repeat(30)}ts`, size: null }, base.tablespaces[1]],
    dataChecksums: true,
    label: 'pgbb "fuzz" \\ label',
  };
}

const JSON_VALUES = ['null', '-1', '1e999', '0', '"x"', '[]', '{}', '[null]', '[{"oid":1}]', 'true', '"0/0"', '9007199254740993', '"16385"'];

/** Replaces one JSON value (after a ':' or in an array) with another. */
function mutateJsonValue(rng: Rng, s: string): string {
  const starts = [...s.matchAll(/[:[,]\s*/g)].map((m) => m.index! + m[0].length);
  if (!starts.length) return s;
  const at = rng.pick(starts);
  const m = /^("(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+|true|false|null|\[\]|\{\})/.exec(s.slice(at));
  const len = m ? m[0].length : 0;
  return s.slice(0, at) + rng.pick(JSON_VALUES) + s.slice(at + len);
}

const TREE_VALUES: unknown[] = [null, -1, 0, 1.5, 2 ** 53, 1e308, '', 'x', '16385', '0/0', true, [], {}, [null], [1], [{}], [{ oid: 1 }], [{ oid: '1', location: '/a' }, { oid: '1', location: '/b' }], { oid: '1' }];

/** Replaces, deletes or adds one value in the descriptor's JSON tree. */
function mutateTree(rng: Rng, d: Record<string, unknown>): void {
  const spaces = Array.isArray(d.tablespaces) ? (d.tablespaces as unknown[]) : [];
  const objects = [d, ...spaces.filter((t): t is Record<string, unknown> => typeof t === 'object' && t !== null && !Array.isArray(t))];
  const r = rng.int(10);
  if (r === 0 && spaces.length) spaces[rng.int(spaces.length)] = rng.pick(TREE_VALUES);
  else {
    const o = rng.pick(objects);
    const key = rng.chance(0.8) && Object.keys(o).length ? rng.pick(Object.keys(o)) : rng.pick(['oid', 'location', 'version', 'x']);
    if (r === 1) delete o[key];
    else o[key] = rng.pick(TREE_VALUES);
  }
}

export const descriptor: FuzzTarget<{ seed: string }> = {
  setup() {
    const seed = encodeDescriptor(descriptorFromStart(sampleStart()));
    assert.ok(decodeDescriptor(seed)); // the seed itself decodes
    return { seed };
  },
  run(rng, ctx) {
    let comment = ctx.seed;
    const mode = rng.int(4);
    if (mode === 0) comment = mutate(rng, Buffer.from(comment)).toString('utf8');
    else if (mode === 3) {
      const d = JSON.parse(comment.slice('pgbb-backup '.length)) as Record<string, unknown>;
      for (let i = 0, n = 1 + rng.int(2); i < n; i++) mutateTree(rng, d);
      comment = `pgbb-backup ${JSON.stringify(d)}`;
    } else for (let i = 0, n = 1 + rng.int(3); i < n; i++) comment = mutateJsonValue(rng, comment);
    if (mode === 2) comment = comment.replace(/"(tablespaces|oid|location|timeline|startLsn)"/, (k) => rng.pick([k, '"x"', '"__proto__"']));
    const d = decodeDescriptor(comment);
    if (d === null) return;
    // What tar-backup-source does with it.
    const start = startFromDescriptor(d);
    const locations = new Map(d.tablespaces.map((t) => [t.oid, t.location]));
    assert.equal(locations.size, start.tablespaces.length - 1);
    for (const t of start.tablespaces) assert.ok(t.oid === null || (typeof t.oid === 'string' && typeof t.location === 'string'));
    assert.ok(Number.isSafeInteger(start.timeline) && typeof start.startLsn === 'string');
    JSON.stringify(start);
  },
};

// ---------------------------------------------------------------- WAL

interface WalCtx {
  wal: BuiltWal;
  /** Offsets within segments of interesting places: record starts, page headers. */
  spots: Array<{ name: string; off: number }>;
  /** Per record with data after its header on the same page: where that data lies. */
  payloads: Array<{ lsn: bigint; name: string; off: number; len: number }>;
}

const SIZES = [100, 9000, 8000, 50, 20000, 24, 3000, 70, 600000, 33, 8144, 100, 400, 420000, 90];

export const wal: FuzzTarget<WalCtx> = {
  setup() {
    const w = buildWal({ sizes: SIZES });
    // The seed itself checks out: records cross pages and segments, one header is split.
    const ok = checkWalRange({ timeline: 1, startLsn: w.startLsn, endLsn: w.endLsn, segmentSize: SEGMENT, readSegment: (n) => w.segments.get(n) ?? null });
    assert.equal(ok.records, w.lsns.length);
    const spots: WalCtx['spots'] = [];
    for (const lsn of w.lsns) spots.push({ name: walFileName(1, lsn, SEGMENT), off: Number(lsn % BigInt(SEGMENT)) });
    for (const [name] of w.segments) for (let off = 0; off < SEGMENT; off += PAGE * 7) spots.push({ name, off });
    const payloads: WalCtx['payloads'] = [];
    w.lsns.forEach((lsn, i) => {
      const off = Number(lsn % BigInt(SEGMENT)) + 24;
      const len = Math.min(SIZES[i]! - 24, PAGE - (off % PAGE));
      if (len > 0 && off % PAGE >= 24) payloads.push({ lsn, name: walFileName(1, lsn, SEGMENT), off, len });
    });
    assert.ok(payloads.length >= 10, `${payloads.length} records to damage`);
    return { wal: w, spots, payloads };
  },
  run(rng, ctx) {
    const w = ctx.wal;
    const read = (segments: Map<string, Buffer>, endLsn = w.endLsn) =>
      checkWalRange({ timeline: 1, startLsn: w.startLsn, endLsn, segmentSize: SEGMENT, readSegment: (n) => segments.get(n) ?? null });
    if (rng.chance(0.1)) {
      // One bit of one record's data: only its CRC can tell, and it must, naming the record.
      const p = rng.pick(ctx.payloads);
      const seg = Buffer.from(w.segments.get(p.name)!);
      seg[p.off + rng.int(p.len)] ^= 1 << rng.int(8);
      const want = `incorrect record checksum at ${formatLsn(p.lsn)} in WAL segment ${p.name}`;
      try {
        read(new Map(w.segments).set(p.name, seg));
      } catch (err) {
        if (err instanceof WalError && err.message === want) throw err;
        throw new assert.AssertionError({ message: `expected "${want}", got ${String(err)}` });
      }
      throw new assert.AssertionError({ message: `a flipped bit in the record at ${formatLsn(p.lsn)} was accepted` });
    }
    if (rng.chance(0.05)) {
      // Unchanged: every record read, up to the end.
      const r = read(w.segments);
      assert.deepEqual([r.records, r.endOfLastRecord], [w.lsns.length, w.endLsn]);
      return;
    }
    const segments = new Map(w.segments);
    for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
      const spot = rng.pick(ctx.spots);
      const seg = Buffer.from(segments.get(spot.name)!);
      const r = rng.int(10);
      if (r < 6) {
        // A few bytes at a record or page header: lengths, flags, pointers, CRC.
        const at = spot.off + rng.int(48);
        const v = rng.pick([0xffffffff, 0x3fffffff, 0x40000000, 0, 1, 24, 0x7fffffff, rng.int(2 ** 32)]);
        if (at + 4 <= seg.length) seg.writeUInt32LE(v >>> 0, at - (at % 4));
      } else if (r < 8) {
        seg[rng.int(seg.length)] ^= 1 << rng.int(8);
      } else if (r < 9) {
        const at = spot.off;
        seg.fill(rng.pick([0, 0xff]), at, Math.min(seg.length, at + 1 + rng.int(PAGE)));
      } else {
        segments.set(spot.name, mutateOnce(rng, seg.subarray(spot.off, spot.off + 64)).length % 2 ? seg.subarray(0, seg.length - 8) : seg);
        continue;
      }
      segments.set(spot.name, seg);
    }
    if (rng.chance(0.1)) segments.delete(rng.pick([...segments.keys()]));
    const end = rng.chance(0.2) ? w.endLsn + BigInt(rng.int(3 * SEGMENT)) : w.endLsn;
    const r = checkWalRange({ timeline: 1, startLsn: w.startLsn, endLsn: end, segmentSize: SEGMENT, readSegment: (n) => segments.get(n) ?? null });
    assert.ok(r.records > 0 && r.endOfLastRecord >= end);
  },
};
