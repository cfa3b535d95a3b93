/**
 * FileTable (src/manifest/file-table.ts): records found again by path across
 * growth and rehashing, sizes, digests and flags kept per record, and paths
 * that differ only in not-UTF-8 bytes (lone surrogates) kept apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileTable } from '../../../src/codec/file-table';
import { pathFromBytes } from '../../../src/codec/path-bytes';
import { ScratchFile } from '../../../src/io/scratch-file';
import { allocationsOf } from '../../support/allocations';
import { fnvCollidingPaths } from '../../support/colliding-paths';

test('100,000 paths: each found again with its size, digest and flags; unknown paths are not', () => {
  const t = new FileTable(4);
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const { index, added } = t.add(`base/${i % 97}/${i}`);
    assert.equal(added, true);
    assert.equal(index, i);
    t.setSize(index, i * 8192);
    assert.ok(t.setDigestHex(index, (i >>> 0).toString(16).padStart(8, '0')));
    if (i % 3 === 0) t.setFlag(index, 2);
  }
  assert.equal(t.count, n);
  for (let i = 0; i < n; i += 7) {
    const at = t.find(`base/${i % 97}/${i}`);
    assert.equal(at, i);
    assert.equal(t.size(at), i * 8192);
    assert.equal(t.digestHex(at), (i >>> 0).toString(16).padStart(8, '0'));
    assert.equal(t.hasFlag(at, 2), i % 3 === 0);
    assert.equal(t.hasFlag(at, 1), false);
    assert.equal(t.path(at), `base/${i % 97}/${i}`);
  }
  assert.equal(t.find('base/1/1000000'), -1);
  assert.deepEqual(t.add('base/5/5'), { index: 5, added: false });
  assert.ok(t.footprint < n * 100, `${t.footprint} bytes for ${n} files`);
});

test('memory is what the records use, plus at most a page: the table grows by pages, not by doubling copies', () => {
  for (const width of [0, 4]) {
    const t = new FileTable(width);
    const n = 100_000;
    let pathBytes = 0;
    for (let i = 0; i < n; i++) {
      const p = `pgbb_bench/${String(Math.floor(i / 1000)).padStart(4, '0')}/f${i}`;
      pathBytes += p.length;
      t.add(p);
    }
    const records = n * (4 + 4 + 4 + 8 + 1 + width); // hash, location, length, size, flags, digest
    const index = 262_144 * 4; // at most half full: the next power of two above 2n slots
    // A doubling table holds up to twice what it uses (here ~7.7 MB for 5.7 MB used).
    const slack = 64 * 1024 + 4096 * (21 + width);
    assert.ok(t.footprint <= pathBytes + records + index + slack, `width ${width}: ${t.footprint} bytes for ${pathBytes + records + index} used`);
  }
});

test('an empty path, first or later, is a path like any other', () => {
  // Also right after a page of its own (a path longer than a page) and after paths that fill a page exactly.
  for (const order of [['', 'a'], ['a', ''], ['x'.repeat(70_000), ''], [...Array.from({ length: 64 }, (_, i) => String(i).padEnd(1024, 'z')), '']]) {
    const t = new FileTable(0);
    for (const p of order) assert.equal(t.add(p).added, true);
    order.forEach((p, i) => {
      assert.equal(t.find(p), i);
      assert.equal(t.path(i), p);
    });
  }
});

test('paths across arena pages and longer than a page are found again whole', () => {
  const t = new FileTable(4);
  const long = 'd/' + 'x'.repeat(70_000);
  const paths: string[] = [];
  for (let i = 0; i < 3000; i++) paths.push(`base/${i}/${'y'.repeat(i % 50)}`);
  paths.splice(1500, 0, long, 'after/the/long/one', 'z'.repeat(65_536), 'é'.repeat(5000));
  for (const p of paths) assert.equal(t.add(p).added, true);
  paths.forEach((p, i) => {
    assert.equal(t.find(p), i);
    assert.equal(t.path(i), p);
  });
  assert.equal(t.find(long.slice(0, -1)), -1);
});

test('paths with not-UTF-8 bytes, the replacement character and plain UTF-8 stay distinct', () => {
  const t = new FileTable(0);
  const paths = [pathFromBytes(Buffer.from([0x61, 0xff])), 'a\ufffd', 'a\udcfe', 'é', pathFromBytes(Buffer.from([0xc3])), 'a'];
  for (const p of paths) assert.equal(t.add(p).added, true, JSON.stringify(p));
  paths.forEach((p, i) => {
    assert.equal(t.find(p), i);
    assert.equal(t.path(i), p);
  });
  assert.equal(t.setDigestHex(0, ''), true, 'a zero-width digest');
});

test('paths built to collide under FNV-1a (a crafted manifest) are added in linear time, not quadratic', () => {
  // Paths that share one 32-bit FNV-1a hash (test/support/colliding-paths.ts). An index on such a hash
  // probes every earlier record for each new one: ~2·10^9 comparisons, tens of seconds.
  const paths = fnvCollidingPaths(16);
  const t = new FileTable(0);
  const t0 = process.hrtime.bigint();
  for (const p of paths) assert.equal(t.add(p).added, true);
  for (let i = 0; i < paths.length; i += 101) assert.equal(t.find(paths[i]), i);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(t.count, 65_536);
  assert.ok(ms < 4000, `65,536 colliding paths took ${Math.round(ms)} ms`);
});

test('with a spill, full pages of paths and records leave memory; they are read back to find, name and change records', () => {
  const spill = new ScratchFile('a test table');
  try {
    const t = new FileTable(4, { spill });
    const n = 100_000;
    const name = (i: number) => (i === 7000 ? 'L/' + 'q'.repeat(80_000) : `pgbb_bench/${String(Math.floor(i / 1000)).padStart(4, '0')}/f${i}`);
    const made = allocationsOf(64 * 1024, () => {
      for (let i = 0; i < n; i++) {
        const { index } = t.add(name(i));
        t.setSize(index, i);
        t.setDigestHex(index, i.toString(16).padStart(8, '0'));
      }
    });
    assert.ok(spill.size > 3_000_000, `${spill.size} bytes spilled`);
    // Four kept arena pages and the one filling, one after the long path's own: a spilled page takes the next paths.
    assert.ok(made <= 7, `${made} arena pages allocated`);
    // In memory: the index (1 MiB), the hashes (400 KB), a few pages; without the spill ~5.9 MB.
    assert.ok(t.footprint < 2_600_000, `${t.footprint} bytes held`);
    // In order, as a manifest names them: found, named, changed (flags set on spilled records are written back).
    for (let i = 0; i < n; i++) {
      assert.equal(t.find(name(i)), i);
      if (i % 3 === 0) t.setFlag(i, 2);
    }
    for (let i = 0; i < n; i += 1) {
      assert.equal(t.size(i), i);
      assert.equal(t.hasFlag(i, 2), i % 3 === 0, `flag of ${i}`);
      if (i % 97 === 0) assert.equal(t.path(i), name(i));
      if (i % 89 === 0) assert.equal(t.digestHex(i), i.toString(16).padStart(8, '0'));
    }
    assert.deepEqual(t.add(name(19_999)), { index: 19_999, added: false });
    assert.equal(t.find('pgbb_bench/0000/f100000'), -1);
    assert.ok(t.footprint < 2_600_000, `still ${t.footprint} bytes held after use in order`);
  } finally {
    spill.close();
  }
});

test('with a spill used at random, the pages come back into memory instead of being read again and again', () => {
  const file = new ScratchFile('a test table');
  let appends = 0;
  let reads = 0;
  const spill = {
    append: (b: Uint8Array) => (appends++, file.append(b)),
    read: (o: number, l: number, into?: Buffer) => (reads++, file.read(o, l, into)),
    overwrite: (o: number, b: Uint8Array) => file.overwrite(o, b),
  };
  try {
    const t = new FileTable(0, { spill });
    const n = 60_000;
    for (let i = 0; i < n; i++) t.setSize(t.add(`base/${i}`).index, i * 2);
    assert.ok(appends >= 8, `${appends} pages spilled`);
    // A 32-bit hash shared by two paths makes add() read a spilled page to tell them apart: count from here.
    const held = t.footprint;
    const before = reads;
    let x = 12345;
    for (let k = 0; k < 20_000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const i = x % n;
      assert.equal(t.find(`base/${i}`), i);
      t.setFlag(i, 1);
      assert.equal(t.size(i), i * 2);
    }
    // 20,000 lookups at random would read a page for nearly each path and record. The arena and the
    // records each give their spill up after 4 reads a spilled page and 256 more (file-table-pages.ts),
    // reading every page back once.
    assert.ok(reads - before <= appends * 5 + 2 * 256, `${reads - before} reads of ${appends} spilled pages`);
    assert.ok(t.footprint > held, `${held} -> ${t.footprint} bytes: back in memory`);
    for (let i = 0; i < n; i += 7) assert.equal(t.path(i), `base/${i}`);
  } finally {
    file.close();
  }
});
