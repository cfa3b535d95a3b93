/**
 * Tests for TarEncoder (src/codec/tar/tar-encoder.ts), the one encoder under
 * tarPack() and TarWriter: data by reference, padding to the block, the
 * marker, and each way an archive could come out malformed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TarEncoder } from '../../../../src/codec/tar/tar-encoder';
import { TarParser, type TarMember } from '../../../../src/codec/tar/tar-parser';
import { TarFormatError } from '../../../../src/errors';

const mtime = new Date('2024-01-02T03:04:05Z');

test('what it encodes parses back; data is returned by reference; padding fills the block', () => {
  const e = new TarEncoder();
  e.commentNext('descriptor');
  const data = Buffer.from('hello');
  const parts: Buffer[] = [e.add({ name: 'a/b', kind: 'file', size: 5, mode: 0o640, mtime })];
  const same = e.data(data);
  assert.equal(same, data);
  parts.push(same, e.endEntry()!);
  assert.equal(parts[2]!.length, 507);
  parts.push(e.add({ name: 'l', kind: 'symlink', size: 0, mode: 0o777, mtime, linkTarget: 'x'.repeat(150) }));
  assert.equal(e.endEntry(), null);
  parts.push(e.end());
  const members: TarMember[] = [];
  const got: Buffer[] = [];
  const p = new TarParser({ entry: (m) => members.push(m), data: (c) => got.push(Buffer.from(c)), entryEnd: () => {} }, { requireEndMarker: true });
  p.write(Buffer.concat(parts));
  p.end();
  assert.deepEqual(members.map((m) => [m.path, m.kind, m.size, m.comment]), [['a/b', 'file', 5, 'descriptor'], ['l', 'symlink', 0, undefined]]);
  assert.equal(members[1]!.linkTarget, 'x'.repeat(150));
  assert.equal(Buffer.concat(got).toString(), 'hello');
});

test('malformed archives are refused: data outside a member, too much or too little data, a member inside a member, the end inside one', () => {
  const e = new TarEncoder();
  assert.throws(() => e.data(Buffer.from('x')), (x: unknown) => x instanceof TarFormatError && /outside a member/.test((x as Error).message));
  e.add({ name: 'f', kind: 'file', size: 2, mode: 0o600, mtime });
  assert.throws(() => e.add({ name: 'g', kind: 'file', size: 0, mode: 0o600, mtime }), /"g" added before "f" ended/);
  assert.throws(() => e.end(), /finalized inside member "f"/);
  e.data(Buffer.from('a'));
  assert.throws(() => e.endEntry(), /ended after 1 of the 2 bytes/);
  const e2 = new TarEncoder();
  e2.add({ name: 'f', kind: 'file', size: 1, mode: 0o600, mtime });
  assert.throws(() => e2.data(Buffer.from('ab')), /got 2 bytes but its header says 1/);
});
