/**
 * dataCrc: the CRC32C of an event's chunk, computed once per event and
 * given again to later callers (knownCrc: only what was computed); an event
 * with other bytes (a spread with a new chunk, a chunk replaced) gets its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculate as crc32c } from 'fast-crc32c';
import { crcBytesDuring } from '../../support/crc-count';
import { dataCrc, knownCrc } from '../../../src/codec/data-crc';
import type { DataEvent } from '../../../src/events';

test('the CRC32C of the chunk, computed on the first call only', async () => {
  const ev: DataEvent = { type: 'data', offset: 0, chunk: Buffer.from('123456789') };
  assert.equal(knownCrc(ev), undefined, 'nothing known before');
  assert.deepEqual(await crcBytesDuring(() => dataCrc(ev)), { value: 0xe3069283, bytes: 9 });
  assert.deepEqual(await crcBytesDuring(() => dataCrc(ev)), { value: 0xe3069283, bytes: 0 }, 'remembered');
  assert.equal(knownCrc(ev), 0xe3069283);
  assert.equal(knownCrc({ ...ev, chunk: Buffer.from('123456789') }), undefined, 'equal bytes in another Buffer: not known (never guessed)');
});

test('other bytes get their own CRC: a spread with another chunk, a chunk replaced, a subarray', () => {
  const ev: DataEvent = { type: 'data', offset: 0, chunk: Buffer.from('123456789') };
  dataCrc(ev);
  const other = Buffer.from('abcdefghi');
  assert.equal(dataCrc({ ...ev, chunk: other }), crc32c(other, 0) >>> 0);
  const moved = { ...ev, offset: 7 };
  assert.equal(dataCrc(moved), 0xe3069283, 'same bytes at another offset');
  ev.chunk = other;
  assert.equal(dataCrc(ev), crc32c(other, 0) >>> 0, 'chunk replaced in the event');
  const sub: DataEvent = { type: 'data', offset: 0, chunk: other.subarray(1) };
  assert.equal(dataCrc(sub), crc32c(other.subarray(1), 0) >>> 0);
  assert.equal(dataCrc({ type: 'data', offset: 0, chunk: Buffer.alloc(0) }), 0);
});
