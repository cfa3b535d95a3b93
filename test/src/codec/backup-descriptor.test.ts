/**
 * Tests for the backup descriptor (src/codec/backup-descriptor.ts): it round-trips,
 * comments that are not pgbb's are ignored, and a damaged pgbb descriptor is
 * a TarFormatError naming the field — never a descriptor with the wrong types
 * that later throws a TypeError (what test/fuzz/formats.test.ts found).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TarFormatError } from '../../../src/errors';
import type { StartEvent } from '../../../src/events';
import { sampleStart } from '../../support/synthetic-backup';
import { decodeDescriptor, descriptorFromStart, encodeDescriptor, startFromDescriptor } from '../../../src/codec/backup-descriptor';

const START: StartEvent = { ...sampleStart('/srv/ts'), dataChecksums: true, label: 'x' };

test('a descriptor round-trips into the same start event', () => {
  const d = decodeDescriptor(encodeDescriptor(descriptorFromStart(START)))!;
  assert.deepEqual(startFromDescriptor(d), START);
});

test('a non-UTF-8 tablespace location survives the descriptor (lone surrogates in JSON)', () => {
  const location = '/srv/ts-\udcff';
  const s = { ...START, tablespaces: [{ oid: '16385', location, size: null }, START.tablespaces[1]!] };
  const d = decodeDescriptor(encodeDescriptor(descriptorFromStart(s)))!;
  assert.equal(d.tablespaces[0]!.location, location);
});

test('comments that are not pgbb descriptors are ignored', () => {
  for (const c of [undefined, '', 'hello', 'pgbb-backup', ' pgbb-backup {}']) assert.equal(decodeDescriptor(c), null);
});

test('a damaged descriptor is a TarFormatError naming the field (fuzz regression)', () => {
  // These used to pass decodeDescriptor (it checked three fields) and then throw
  // TypeErrors in startFromDescriptor or in tar-backup-source.
  const base = descriptorFromStart(START) as unknown as Record<string, unknown>;
  const fixtures: Array<[string, Record<string, unknown>, RegExp]> = [
    ['tablespaces: [null]', { ...base, tablespaces: [null] }, /tablespaces\[0\] is not an object/],
    ['a tablespace without an oid', { ...base, tablespaces: [{ location: '/x' }] }, /tablespaces\[0\]\.oid is not an OID/],
    ['a numeric oid', { ...base, tablespaces: [{ oid: 16385, location: '/x' }] }, /tablespaces\[0\]\.oid is not an OID/],
    ['a tablespace twice', { ...base, tablespaces: [{ oid: '1', location: '/x' }, { oid: '1', location: '/y' }] }, /tablespace 1 appears twice/],
    ['timeline as a string', { ...base, timeline: '1' }, /timeline is not a timeline ID/],
    ['systemIdentifier as a number', { ...base, systemIdentifier: 7350000000000000001 }, /systemIdentifier is not a decimal string/],
    ['a segment size of 1e999', { ...base, walSegmentSize: 1e999 }, /walSegmentSize/],
    ['a missing label', { ...base, label: undefined }, /label is not a string/],
    ['a bad LSN', { ...base, startLsn: '0/0/0' }, /startLsn is not an LSN/],
    ['dataChecksums as 1', { ...base, dataChecksums: 1 }, /dataChecksums is not a boolean/],
  ];
  for (const [name, d, why] of fixtures) {
    assert.throws(() => decodeDescriptor(`pgbb-backup ${JSON.stringify(d)}`), (e: Error) => e instanceof TarFormatError && why.test(e.message), name);
  }
  assert.throws(() => decodeDescriptor('pgbb-backup {"version":1,'), (e: Error) => e instanceof TarFormatError && /^malformed pgbb backup descriptor: not valid JSON \(/.test(e.message) && !/\n/.test(e.message));
  assert.throws(() => decodeDescriptor('pgbb-backup [1]'), /not a JSON object/);
});
