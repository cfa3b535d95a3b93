/**
 * The page checksum codec against PostgreSQL itself: every page of a real
 * PostgreSQL 15 cluster (data checksums on) must carry the checksum we
 * compute, and pages we build must pass `pg_checksums --check`, which also
 * tells us the checksum it calculates when we store a wrong one.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN } from '../../support/cluster';
import { chownToPostgres, CommandError, run } from '../../support/run';
import {
  blockNumber,
  isNewPage,
  isRelationFile,
  pageChecksum,
  pageChecksumField,
  pageHeader,
  pageLsnHigh,
  pageLsnLow,
  pageUpper,
} from '../../../src/codec/page-checksum';

const BS = 8192;

/** An initialized, empty heap page: header only (pd_lower 24, pd_upper = pd_special = 8192, 8 KiB layout 4). */
function emptyPage(lsnHi = 0, lsnLo = 0): Buffer {
  const p = Buffer.alloc(BS);
  p.writeUInt32LE(lsnHi, 0);
  p.writeUInt32LE(lsnLo, 4);
  p.writeUInt16LE(24, 12);
  p.writeUInt16LE(BS, 14);
  p.writeUInt16LE(BS, 16);
  p.writeUInt16LE(0x2004, 18);
  return p;
}

/** The same header with LSN 1/2345678 and bytes 24… set to (i × 31 + 7) mod 256. */
function patternedPage(): Buffer {
  const p = emptyPage(1, 0x2345678);
  for (let i = 24; i < BS; i++) p[i] = (i * 31 + 7) & 0xff;
  return p;
}

/** Every byte 0xFF (pd_upper 0xFFFF, so not a new page). */
function onesPage(): Buffer {
  return Buffer.alloc(BS, 0xff);
}

/**
 * Pinned vectors: [page, block number, checksum]. The pg_checksums test below
 * confirms the ones a file can hold (block 0xFFFFFFFF cannot exist on disk).
 */
const VECTORS: Array<[string, () => Buffer, number, number]> = [
  ['empty page', emptyPage, 0, 0x6560],
  ['empty page', emptyPage, 1, 0x655f],
  ['empty page', emptyPage, 131077, 0x6559],
  ['empty page', emptyPage, 0xffffffff, 0x9aa1],
  ['patterned page', patternedPage, 0, 0xa155],
  ['patterned page', patternedPage, 2, 0xa157],
  ['patterned page', patternedPage, 131077, 0xa158],
  ['patterned page', patternedPage, 0xffffffff, 0x5eac],
  ['all-ones page', onesPage, 1, 0x0e1d],
  ['all-ones page', onesPage, 0xffffffff, 0xf1e5],
];

describe('pageChecksum (pure)', () => {
  for (const [name, make, blk, want] of VECTORS) {
    test(`${name}, block ${blk}: ${want.toString(16).toUpperCase()}`, () => {
      assert.equal(pageChecksum(make(), blk), want);
    });
  }

  test('pd_checksum (bytes 8–9) does not take part; every other byte does', () => {
    const p = patternedPage();
    const base = pageChecksum(p, 7);
    p.writeUInt16LE(0xbeef, 8);
    assert.equal(pageChecksum(p, 7), base, 'the stored checksum is ignored');
    for (const at of [0, 7, 10, 11, 12, 127, 128, 4096, 8190, 8191]) {
      const q = patternedPage();
      q[at] ^= 0x01;
      assert.notEqual(pageChecksum(q, 7), base, `flipping a bit of byte ${at} changes the checksum`);
    }
  });

  test('the block number is mixed in: the same page at another block has another checksum', () => {
    const p = patternedPage();
    const seen = new Set<number>();
    for (let b = 0; b < 64; b++) seen.add(pageChecksum(p, b));
    assert.equal(seen.size, 64);
  });

  test('results are within 1…65535 (never 0)', () => {
    const p = patternedPage();
    for (let b = 0; b < 2000; b++) {
      p.writeUInt32LE(Math.imul(b, 2654435761) >>> 0, 100);
      const c = pageChecksum(p, b);
      assert.ok(c >= 1 && c <= 65535, String(c));
    }
  });

  test('aligned and unaligned buffers, whole pages and pages inside a larger buffer, give the same result', () => {
    const p = patternedPage();
    const want = pageChecksum(p, 3);
    for (const shift of [0, 1, 2, 3, 4, 5, 512]) {
      const big = Buffer.alloc(shift + BS + 100);
      p.copy(big, shift);
      assert.equal(pageChecksum(big, 3, shift, BS), want, `page at offset ${shift}`);
      assert.equal(pageChecksum(big.subarray(shift, shift + BS), 3), want, `subarray at offset ${shift}`);
    }
  });

  test('other block sizes: 1 KiB … 32 KiB pages, aligned and not, agree', () => {
    for (const size of [1024, 2048, 4096, 16384, 32768]) {
      const p = Buffer.alloc(size + 1);
      for (let i = 0; i < size + 1; i++) p[i] = (i * 131 + 17) & 0xff;
      const aligned = pageChecksum(p.subarray(0, size), 9);
      assert.equal(pageChecksum(p, 9, 1, size), pageChecksum(Buffer.from(p.subarray(1)), 9, 0, size));
      assert.ok(aligned >= 1 && aligned <= 65535);
    }
  });

  test('a size that is not a multiple of 128 bytes, or a page past the end, is a RangeError', () => {
    assert.throws(() => pageChecksum(Buffer.alloc(100), 0), RangeError);
    assert.throws(() => pageChecksum(Buffer.alloc(BS), 0, 1, BS), RangeError);
    assert.throws(() => pageChecksum(Buffer.alloc(0), 0), RangeError);
  });
});

describe('page header', () => {
  test('decodes every field of a built header', () => {
    const p = emptyPage(0x12, 0x3456789a);
    p.writeUInt16LE(0xabcd, 8);
    p.writeUInt16LE(0x0004, 10);
    p.writeUInt32LE(777, 20);
    assert.deepEqual(pageHeader(p), {
      lsn: 0x123456789an,
      checksum: 0xabcd,
      flags: 4,
      lower: 24,
      upper: 8192,
      special: 8192,
      pageSize: 8192,
      layoutVersion: 4,
      pruneXid: 777,
    });
    assert.equal(pageLsnHigh(p), 0x12);
    assert.equal(pageLsnLow(p), 0x3456789a);
    assert.equal(pageChecksumField(p), 0xabcd);
    assert.equal(pageUpper(p), 8192);
    const inside = Buffer.concat([Buffer.alloc(3), p]);
    assert.deepEqual(pageHeader(inside, 3), pageHeader(p));
  });

  test('isNewPage is pd_upper == 0, whatever the other bytes hold', () => {
    assert.equal(isNewPage(Buffer.alloc(BS)), true);
    const p = Buffer.alloc(BS, 0x55);
    p.writeUInt16LE(0, 14);
    assert.equal(isNewPage(p), true);
    assert.equal(isNewPage(emptyPage()), false);
  });
});

describe('isRelationFile', () => {
  const cases: Array<[string, number | null, number | null]> = [
    // path, segno on 13–16, segno on 17+
    ['base/5/16384', 0, 0],
    ['./base/5/16384', 0, 0],
    ['base/5/16384.1', 1, 1],
    ['base/5/16384.12', 12, 12],
    ['base/5/16384_fsm', 0, 0],
    ['base/5/16384_vm.3', 3, 3],
    ['base/5/16384_init', 0, 0],
    ['global/1262', 0, 0],
    ['global/1262_vm', 0, 0],
    ['pg_tblspc/16390/PG_15_202209061/5/16385', 0, 0],
    ['pg_tblspc/16390/PG_17_202406281/5/16385.2', 2, 2],
    ['global/pg_control', null, null],
    ['global/pg_filenode.map', null, null],
    ['base/5/pg_filenode.map', null, null],
    ['base/5/PG_VERSION', null, null],
    ['base/5/pg_internal.init', null, null],
    ['base/5/pg_internal.init.1234', null, null],
    ['PG_VERSION', null, null],
    ['postgresql.conf', null, null],
    ['pg_wal/000000010000000000000001', null, null],
    ['pg_xact/0000', null, null],
    ['pg_multixact/offsets/0000', null, null],
    ['backup_label', null, null],
    // 13–16 check anything else under global/, base/ and tablespaces; 17+ only relation file names.
    ['base/5/16384_main', 0, null],
    ['base/5/016384', 0, null],
    ['base/5/notes', 0, null],
    ['base/5/16384.0', null, null],
    ['base/5/16384.', null, null],
    ['base/5/16384.x', null, null],
    ['base/5/sub/16384', 0, null],
    ['global/sub/1262', 0, null],
    ['pg_tblspc/16390/PG_15_202209061/5/notes', 0, null],
    ['base/16384', 0, null],
    ['base/5/99999999999', 0, null],
  ];
  for (const [path, v15, v17] of cases) {
    test(`${path}: 13–16 ${v15 ?? 'not checked'}, 17+ ${v17 ?? 'not checked'}`, () => {
      assert.deepEqual(isRelationFile(path, 130000), v15 === null ? null : { segno: v15 });
      assert.deepEqual(isRelationFile(path, 150018), v15 === null ? null : { segno: v15 });
      assert.deepEqual(isRelationFile(path, 170011), v17 === null ? null : { segno: v17 });
    });
  }

  test('block number = segno × segment blocks + index', () => {
    assert.equal(blockNumber(0, 5), 5);
    assert.equal(blockNumber(2, 5), 2 * 131072 + 5);
    assert.equal(blockNumber(3, 1, 1024), 3073);
  });
});

describe('against PostgreSQL 15', () => {
  let cluster: Cluster;
  let relFile: string;

  before(async () => {
    cluster = await Cluster.create();
    await cluster.query(`CREATE TABLE vec AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 400) g`);
    await cluster.query(`CREATE INDEX vec_id ON vec (id)`);
    await cluster.query(`VACUUM vec`); // writes the _fsm and _vm forks too
    const [row] = await cluster.query<{ path: string }>(`SELECT pg_relation_filepath('vec') AS path`);
    relFile = join(cluster.dataDir, row.path);
    await cluster.stop(); // a clean shutdown: every page on disk, with its checksum
  });

  after(() => cluster.destroy());

  test('every non-new page of every relation file carries the checksum we compute', async () => {
    let pages = 0;
    let files = 0;
    const forks = new Set<string>();
    for (const rel of await relationFiles(cluster.dataDir)) {
      const found = isRelationFile(rel, 150000);
      if (!found) continue;
      files++;
      const data = await fs.readFile(join(cluster.dataDir, rel));
      assert.equal(data.length % BS, 0, rel);
      const unaligned = Buffer.alloc(data.length + 1);
      data.copy(unaligned, 1);
      for (let off = 0, i = 0; off < data.length; off += BS, i++) {
        if (isNewPage(data, off)) continue;
        const blk = blockNumber(found.segno, i);
        const stored = pageChecksumField(data, off);
        assert.equal(pageChecksum(data.subarray(off, off + BS), blk), stored, `${rel} block ${i}`);
        assert.equal(pageChecksum(data, blk, off, BS), stored, `${rel} block ${i} (in place)`);
        assert.equal(pageChecksum(unaligned, blk, off + 1, BS), stored, `${rel} block ${i} (unaligned)`);
        pages++;
        const fork = /_(fsm|vm)$/.exec(rel)?.[1];
        if (fork) forks.add(fork);
      }
    }
    assert.ok(files > 100, `${files} relation files`);
    assert.ok(pages > 500, `${pages} pages checked`);
    assert.deepEqual([...forks].sort(), ['fsm', 'vm'], 'free space map and visibility map pages too');
  });

  test('pages we build pass pg_checksums --check, and it calculates our value for a wrong one', async () => {
    // The table's file has ≥ 3 blocks: replace blocks 0–2 with our vectors.
    const file = await fs.open(relFile, 'r+');
    try {
      assert.ok((await file.stat()).size >= 3 * BS);
      const put = async (page: Buffer, blk: number, checksum: number) => {
        page.writeUInt16LE(checksum, 8);
        await file.write(page, 0, BS, blk * BS);
      };
      await put(emptyPage(), 0, 0x6560);
      await put(onesPage(), 1, 0x0e1d);
      await put(patternedPage(), 2, 0xa157);
    } finally {
      await file.close();
    }
    // A second segment: block 5 of `<relfilenode>.1` is block 131077; blocks 0–4 are new (all zero).
    const seg1 = Buffer.alloc(6 * BS);
    const p = patternedPage();
    p.writeUInt16LE(0xa158, 8);
    p.copy(seg1, 5 * BS);
    await fs.writeFile(`${relFile}.1`, seg1, { mode: 0o600 });
    await chownToPostgres(`${relFile}.1`, false);

    const ok = await pgChecksums(cluster.dataDir);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.output, /Bad checksums:\s+0\b/);

    // Now store a wrong checksum in block 2: pg_checksums names the one it calculates.
    const bad = patternedPage();
    bad.writeUInt16LE(0x1234, 8);
    const f = await fs.open(relFile, 'r+');
    await f.write(bad, 0, BS, 2 * BS).finally(() => f.close());
    const failed = await pgChecksums(cluster.dataDir);
    assert.equal(failed.code, 1, failed.output);
    assert.match(failed.output, /Bad checksums:\s+1\b/);
    const m = /checksum verification failed in file "[^"]+", block 2: calculated checksum ([0-9A-F]+) but block contains 1234/.exec(
      failed.output,
    );
    assert.ok(m, failed.output);
    assert.equal(parseInt(m[1], 16), pageChecksum(bad, 2));
  });
});

/** Files under global/ and base/, relative to the data directory. */
async function relationFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const top of ['global', 'base']) {
    for (const ent of await fs.readdir(join(dataDir, top), { recursive: true, withFileTypes: true })) {
      if (!ent.isFile()) continue;
      const dir = ent.path ?? (ent as unknown as { parentPath: string }).parentPath;
      out.push(join(dir, ent.name).slice(dataDir.length + 1));
    }
  }
  return out;
}

async function pgChecksums(dataDir: string): Promise<{ code: number; output: string }> {
  try {
    const r = await run(join(DEBIAN_PG15_BIN, 'pg_checksums'), ['--check', '-D', dataDir], { asPostgres: true });
    return { code: 0, output: r.stdout + r.stderr };
  } catch (err) {
    if (err instanceof CommandError && err.exitCode !== null) return { code: err.exitCode, output: err.stdout + err.stderr };
    throw err;
  }
}
