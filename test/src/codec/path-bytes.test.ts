/**
 * Tests for the lossless path strings (src/codec/path-bytes.ts): every byte string
 * survives pathFromBytes → pathToBytes (random bytes, every invalid UTF-8
 * form by name), valid UTF-8 decodes as node does, node:fs creates and finds
 * a file by the bytes, and messages show escaped bytes and control
 * characters as \xNN on one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsPath, isRawPath, pathFromBytes, pathToBytes, showPath } from '../../../src/codec/path-bytes';

const FIXTURES: Array<[string, number[]]> = [
  ['ASCII', [0x62, 0x61, 0x73, 0x65]],
  ['Latin-1 é (not UTF-8)', [0x66, 0xe9, 0x65]],
  ['a lone continuation byte', [0x80]],
  ['a truncated 2-byte sequence at the end', [0x61, 0xc3]],
  ['an overlong "/" (c0 af)', [0xc0, 0xaf]],
  ['an encoded surrogate U+D800 (ed a0 80)', [0xed, 0xa0, 0x80]],
  ['beyond U+10FFFF (f4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
  ['ff fe x', [0xff, 0xfe, 0x78]],
  ['valid 4-byte emoji then junk', [0xf0, 0x9f, 0x98, 0x80, 0xff]],
  ['junk then a valid 3-byte char', [0xfe, 0xe2, 0x82, 0xac]],
  ['a 3-byte sequence cut by "/"', [0xe2, 0x82, 0x2f, 0x61]],
  ['U+10080 (the pair d800 dc80) is not an escape', [0xf0, 0x90, 0x82, 0x80]],
];

test('named byte strings round-trip exactly; valid UTF-8 decodes as node does', () => {
  for (const [name, bytes] of FIXTURES) {
    const b = Buffer.from(bytes);
    const s = pathFromBytes(b);
    assert.deepEqual([...pathToBytes(s)], bytes, name);
    const valid = Buffer.from(b.toString('utf8'), 'utf8').equals(b);
    if (valid) assert.equal(s, b.toString('utf8'), name);
    assert.equal(isRawPath(s), !valid, name);
  }
  assert.equal(pathFromBytes(Buffer.from([0x61, 0xff, 0x62])), 'a\udcffb');
  assert.equal(pathFromBytes(Buffer.from('xx/ab', 'latin1'), 3), 'ab');
});

test('random byte strings round-trip exactly (20,000 of them, biased to the UTF-8 lead and continuation bytes)', () => {
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
  const pool = [0x2f, 0x61, 0x80, 0xbf, 0xc2, 0xc3, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0];
  for (let i = 0; i < 20000; i++) {
    const n = next() % 12;
    const b = Buffer.alloc(n);
    for (let k = 0; k < n; k++) b[k] = next() < 128 ? pool[next() % pool.length]! : next();
    assert.ok(pathToBytes(pathFromBytes(b)).equals(b), b.toString('hex'));
  }
});

test('distinct byte strings give distinct strings (Map keys and duplicate checks stay exact)', () => {
  // Node's lossy decoding maps all three to the same "\ufffd".
  const keys = [[0xff], [0xfe], [0xef, 0xbf, 0xbd]].map((b) => pathFromBytes(Buffer.from(b)));
  assert.equal(new Set(keys).size, 3);
});

test('fsPath: node:fs creates and finds a file by its bytes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-pathbytes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const name = pathFromBytes(Buffer.from([0xff, 0xfe, 0x78]));
  writeFileSync(fsPath(join(dir, name)), 'raw');
  assert.deepEqual(readdirSync(dir, { encoding: 'buffer' }), [Buffer.from([0xff, 0xfe, 0x78])]);
  assert.equal(readFileSync(fsPath(join(dir, name)), 'utf8'), 'raw');
  assert.equal(fsPath('plain/é'), 'plain/é', 'well-formed strings go to node:fs as they are');
});

test('showPath: escaped bytes and control characters as \\xNN, everything else as is', () => {
  assert.equal(showPath('base/1/1259'), 'base/1/1259');
  assert.equal(showPath('größe'), 'größe');
  assert.equal(showPath(pathFromBytes(Buffer.from([0x61, 0xff, 0x0a, 0x62, 0x00]))), 'a\\xff\\x0ab\\x00');
  assert.equal(showPath('\ud800\udc80'), '\ud800\udc80', 'a surrogate pair is a character, not an escape');
});
