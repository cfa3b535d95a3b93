/**
 * BinaryCopyDecoder: COPY … (FORMAT binary) output split at every byte
 * boundary decodes to the same rows; NULLs, empty values, a bad signature,
 * a truncated stream and data after the trailer are told apart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryCopyDecoder } from '../../../../src/codec/protocol/binary-copy';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function copyOutput(rows: (Buffer | null)[][]): Buffer {
  const parts: Buffer[] = [SIGNATURE, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])];
  for (const row of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(row.length);
    parts.push(count);
    for (const f of row) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(f === null ? -1 : f.length);
      parts.push(len, ...(f ? [f] : []));
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

function decode(pieces: Buffer[]): (Buffer | null)[][] {
  const rows: (Buffer | null)[][] = [];
  const d = new BinaryCopyDecoder((r) => rows.push(r.map((f) => (f ? Buffer.from(f) : null))));
  for (const p of pieces) d.write(p);
  d.end();
  return rows;
}

const ROWS = [[Buffer.from('hello')], [null], [Buffer.alloc(0)], [Buffer.from([0, 255, 13, 10]), null]];

test('rows decode the same however the output is split', () => {
  const whole = copyOutput(ROWS);
  assert.deepEqual(decode([whole]), ROWS);
  for (let i = 0; i <= whole.length; i++) assert.deepEqual(decode([whole.subarray(0, i), whole.subarray(i)]), ROWS, `split at ${i}`);
  assert.deepEqual(decode([...whole].map((b) => Buffer.from([b]))), ROWS, 'one byte at a time');
});

test('a bad signature, a stream cut short and bytes after the trailer are errors', () => {
  const whole = copyOutput(ROWS);
  const bad = Buffer.from(whole);
  bad[0] = 0x51;
  assert.throws(() => decode([bad]), /without its signature/);
  assert.throws(() => decode([whole.subarray(0, whole.length - 3)]), /ended inside a row or without its trailer/);
  assert.throws(() => decode([whole, Buffer.from([0])]), /data after the end/);
});

test('a 1 MiB field fed in 64 KiB parts comes out whole, in one buffer of exactly its length; a field inside one part is a view of it', () => {
  const big = Buffer.alloc(1 << 20, 7);
  big[12345] = 1;
  const out = copyOutput([[big], [Buffer.from('small')]]);
  const rows: (Buffer | null)[][] = [];
  const d = new BinaryCopyDecoder((r) => rows.push(r));
  const parts: Buffer[] = [];
  for (let at = 0; at < out.length; at += 64 * 1024) parts.push(out.subarray(at, at + 64 * 1024));
  for (const p of parts) d.write(p);
  d.end();
  assert.equal(rows.length, 2);
  assert.ok(rows[0][0]!.equals(big));
  assert.equal(rows[0][0]!.buffer.byteLength, big.length, 'its own buffer, not a grown or concatenated one');
  assert.equal(rows[1][0]!.toString(), 'small');
  assert.equal(rows[1][0]!.buffer, parts[parts.length - 1].buffer, 'no copy when the field lies inside one part');
});
