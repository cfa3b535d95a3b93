/**
 * FileTable (src/manifest/file-table.ts): records found again by path across
 * growth and rehashing, sizes, digests and flags kept per record, and paths
 * that differ only in not-UTF-8 bytes (lone surrogates) kept apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileTable } from '../../../src/codec/file-table';
import { pathFromBytes } from '../../../src/codec/path-bytes';

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
