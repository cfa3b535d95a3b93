/**
 * What a crafted backup_manifest can make the streaming reader hold
 * (src/codec/manifest-reader.ts over json-tokenizer.ts and json-value.ts):
 * one huge string, number or literal, one entry of a million fields, a
 * million unknown top-level fields or WAL ranges, nesting 64 MiB deep, one line of 48 MiB (held
 * for the checksum). Each is refused or cut as it comes, so memory stays
 * small whatever the manifest's size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManifestReader } from '../../../src/codec/manifest';
import { JsonTokenizer, JsonSyntaxError, type JsonHandler } from '../../../src/codec/json-tokenizer';
import { JsonValueBuilder } from '../../../src/codec/json-value';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap growth (MiB) while `pieces` are written, measured before end(): what the reader holds. */
function heldWhileReading(head: string, piece: (i: number) => string, mib: number): { held: number; reader: ManifestReader } {
  const r = new ManifestReader();
  gc();
  gc();
  const before = held();
  r.write(Buffer.from(head));
  for (let total = 0, i = 0; total < mib * 1024 * 1024; i++) {
    const b = Buffer.from(piece(i));
    r.write(b);
    total += b.length;
  }
  gc();
  return { held: (held() - before) / 1024 / 1024, reader: r };
}

/** JS heap and Buffers outside it. */
function held(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const HEAD = '{"PostgreSQL-Backup-Manifest-Version":1,\n';
const ENTRY = '"Files":[{"Path":"a","Size":1,"Last-Modified":"2020-01-01 00:00:00 GMT",';

test('one string of 24 MiB is refused, not held', () => {
  const { held, reader } = heldWhileReading(`${HEAD}"Files":[{"Path":"`, () => 'x'.repeat(64 * 1024), 24);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  assert.throws(() => reader.end(), /^ManifestError: backup_manifest: not valid JSON \(String longer than 1048576 characters/);
});

test('a literal of 24 MiB letters is refused at its sixth', () => {
  const { held, reader } = heldWhileReading(`${HEAD}"Junk":t`, () => 'x'.repeat(64 * 1024), 24);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  assert.throws(() => reader.end(), /not valid JSON \(Unexpected token "txxxxx" at position 48\)/);
});

test('a file entry of 800,000 fields holds only its first ones', () => {
  const { held, reader } = heldWhileReading(HEAD + ENTRY, (i) => `"k${i}":1,\n"q${i}":[1,2],\n`, 10);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  reader.write(Buffer.from('"x":1}]}\n'));
  assert.throws(() => reader.end(), /^ManifestError: backup_manifest: /);
});

test('500,000 unknown top-level fields are not kept', () => {
  const { held, reader } = heldWhileReading(HEAD, (i) => `"k${i}":"v${i}",\n`, 10);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  reader.write(Buffer.from('"Manifest-Checksum":"x"}\n'));
  assert.throws(() => reader.end(), /unrecognized top-level field "k0"/);
});

test('an array element of 2 million numbers holds only its first ones', () => {
  const { held, reader } = heldWhileReading(`${HEAD}"Junk":[`, () => '1,'.repeat(30000), 4);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  reader.write(Buffer.from('1]}\n'));
  assert.throws(() => reader.end(), /unrecognized top-level field "Junk"/);
});

test('a manifest of one 48 MiB line is not held for its checksum', () => {
  const { held, reader } = heldWhileReading('{"PostgreSQL-Backup-Manifest-Version":1,', () => ' '.repeat(64 * 1024), 48);
  assert.ok(held < 8, `held ${held.toFixed(1)} MiB`);
  reader.write(Buffer.from('"Manifest-Checksum":"x"}\n'));
  assert.throws(() => reader.end(), /expected at least 2 lines/);
});

test('WAL-Ranges of 1,000,000 ranges: refused past 100,000, the rest not held', () => {
  const range = '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" },\n';
  const { held, reader } = heldWhileReading(`${HEAD}"WAL-Ranges": [\n`, () => range.repeat(1000), (1000 * 1000 * range.length) / 1024 / 1024);
  assert.ok(held < 40, `held ${held.toFixed(1)} MiB`);
  assert.throws(() => reader.end(), /^ManifestError: backup_manifest: /);
});

test('64 MiB of "[" is refused past a million levels, not kept as a 64 MiB stack', () => {
  const { held, reader } = heldWhileReading(`${HEAD}"Junk":`, () => '['.repeat(1024 * 1024), 64);
  assert.ok(held < 32, `held ${held.toFixed(1)} MiB`);
  assert.throws(() => reader.end(), /not valid JSON \(Nested deeper than 1048576 levels at position 1048623\)/);
});

const NOTHING: JsonHandler = { startObject() {}, endObject() {}, startArray() {}, endArray() {}, key() {}, scalar() {} };

test('JsonTokenizer: maxToken bounds strings (escapes included) and numbers, split anywhere', () => {
  for (const doc of [`"${'x'.repeat(11)}"`, `"${'\\n'.repeat(11)}"`, `"${'\\u0041'.repeat(11)}"`, '1'.repeat(11)]) {
    const t = new JsonTokenizer(NOTHING, 10);
    assert.throws(() => {
      for (const c of doc) t.write(c);
      t.end();
    }, JsonSyntaxError, doc);
    const ok = new JsonTokenizer(NOTHING, 11);
    for (const c of doc) ok.write(c);
    ok.end();
  }
});

test('JsonValueBuilder: maxMembers keeps the first members; a kept key still takes its last value', () => {
  const b = new JsonValueBuilder(1, 3);
  const t = new JsonTokenizer(b);
  t.write('{"a":1,"b":2,"c":[1,2,3,4,5],"d":4,"a":5,"e":6}');
  t.end();
  assert.deepEqual(b.value, Object.assign(Object.create(null), { a: 5, b: 2, c: [1, 2, 3] }));
});
