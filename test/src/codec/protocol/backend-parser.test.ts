import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BackendParser,
  parseDataRow,
  parseNotice,
  parseRowDescription,
} from '../../../../src/codec/protocol/backend-parser';
import { ProtocolError } from '../../../../src/errors';
import { copyData, dataRow, msg, rowDescription } from '../../../support/backend-messages';


function notice(code: string, fields: Record<string, string>): Buffer {
  const parts = Object.entries(fields).map(([k, v]) => Buffer.from(k + v + '\0'));
  return msg(code, Buffer.concat([...parts, Buffer.from([0])]));
}

const stream = Buffer.concat([
  rowDescription(['recptr', 'tli']),
  dataRow(['0/2000028', '1']),
  msg('C', Buffer.from('SELECT\0')),
  msg('H', Buffer.from([0, 0, 0])),
  copyData(Buffer.from('nbase.tar\0\0')),
  copyData(Buffer.alloc(700, 7)),
  notice('N', { S: 'WARNING', V: 'WARNING', C: '01000', M: 'checksum verification failed' }),
  msg('c', Buffer.alloc(0)),
  msg('Z', Buffer.from('I')),
]);

function parseAll(chunks: Buffer[]): { code: string; body: string }[] {
  const out: { code: string; body: string }[] = [];
  const p = new BackendParser((code, body) => out.push({ code: String.fromCharCode(code), body: body.toString('hex') }));
  for (const c of chunks) p.write(c);
  assert.ok(p.idle, 'parser holds nothing at a message boundary');
  return out;
}

test('backend parser: same messages whatever the split point', () => {
  const whole = parseAll([stream]);
  assert.deepEqual(
    whole.map((m) => m.code),
    ['T', 'D', 'C', 'H', 'd', 'd', 'N', 'c', 'Z'],
  );
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(parseAll([stream.subarray(0, i), stream.subarray(i)]), whole, `split at ${i}`);
  }
});

test('backend parser: byte at a time and three-way splits', () => {
  const whole = parseAll([stream]);
  const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
  assert.deepEqual(parseAll(bytes), whole);
  for (let i = 0; i < stream.length; i += 7) {
    for (let j = i; j < stream.length; j += 13) {
      assert.deepEqual(parseAll([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]), whole);
    }
  }
});

test('backend parser: a message inside one chunk is a view, not a copy', () => {
  const chunk = copyData(Buffer.from('dhello'));
  const bodies: Buffer[] = [];
  new BackendParser((_c, b) => bodies.push(b)).write(chunk);
  chunk[6] = 'H'.charCodeAt(0);
  assert.equal(bodies[0].toString(), 'dHello');
});

test('backend parser: a message split across chunks survives reuse of the chunks', () => {
  const chunk = copyData(Buffer.from('dhello world'));
  const bodies: Buffer[] = [];
  const p = new BackendParser((_c, b) => bodies.push(b));
  const a = Buffer.from(chunk.subarray(0, 8));
  const b = Buffer.from(chunk.subarray(8));
  p.write(a);
  p.write(b);
  a.fill(0);
  b.fill(0);
  assert.equal(bodies[0].toString(), 'dhello world');
});

test('backend parser: with a part handler, a split CopyData comes in parts that are views of the chunks; other messages as before', () => {
  const body = Buffer.alloc(700, 7);
  const wire = Buffer.concat([msg('N', Buffer.from('x\0')), copyData(body), msg('Z', Buffer.from('I'))]);
  for (let i = 0; i <= wire.length; i++) {
    const chunks = [wire.subarray(0, i), wire.subarray(i)];
    const seen: string[] = [];
    const parts: Buffer[] = [];
    const p = new BackendParser((code, b) => seen.push(`${String.fromCharCode(code)}:${b.length}`), {
      wantParts: () => true,
      part: (part, first, last) => {
        assert.ok(part.length > 0, 'no empty part');
        assert.equal(first, parts.length === 0, `split at ${i}: first flag`);
        assert.ok(chunks.some((c) => c.buffer === part.buffer), 'a part is a view of a chunk, not a copy');
        parts.push(part);
        if (last) seen.push(`d-parts:${Buffer.concat(parts).length}`);
      },
    });
    for (const c of chunks) p.write(c);
    assert.ok(p.idle);
    // Once its header has begun in one chunk and its body ends in the next, it comes in parts (possibly one).
    const split = i > 7 && i < 7 + 5 + body.length;
    assert.deepEqual(seen, ['N:2', split ? 'd-parts:700' : 'd:700', 'Z:1'], `split at ${i}`);
    if (split) assert.ok(Buffer.concat(parts).equals(body));
  }
});

test('backend parser: rejects an impossible length', () => {
  const p = new BackendParser(() => {});
  assert.throws(() => p.write(Buffer.from([0x64, 0, 0, 0, 2])), ProtocolError);
  assert.throws(() => new BackendParser(() => {}).write(Buffer.from([0x64, 0x7f, 0xff, 0xff, 0xff])), /invalid message length/);
});

test('row description, data row and notice decoding', () => {
  const seen: Record<string, Buffer> = {};
  new BackendParser((c, b) => (seen[String.fromCharCode(c)] = b)).write(
    Buffer.concat([rowDescription(['spcoid', 'spclocation', 'size']), dataRow(['16385', '/srv/ts', null])]),
  );
  assert.deepEqual(parseRowDescription(seen.T), ['spcoid', 'spclocation', 'size']);
  assert.deepEqual(parseDataRow(seen.D), ['16385', '/srv/ts', null]);
  const n = notice('E', { S: 'ERROR', V: 'ERROR', C: 'XX001', M: 'checksum verification failure during base backup', D: 'detail' });
  const body = n.subarray(5);
  assert.deepEqual(parseNotice(body), {
    severity: 'ERROR',
    sqlstate: 'XX001',
    message: 'checksum verification failure during base backup',
    detail: 'detail',
  });
});

test('backend parser: a huge declared length allocates only what has arrived (fuzz regression)', () => {
  // Found by test/fuzz/protocol.test.ts: a corrupt length field made the parser
  // allocate the whole declared size (up to 64 MiB) before a byte of it came.
  const p = new BackendParser(() => assert.fail('no message is complete'));
  const header = Buffer.from([0x64, 0, 0, 0, 0]);
  header.writeUInt32BE(60 * 1024 * 1024, 1);
  const before = process.memoryUsage().arrayBuffers;
  p.write(Buffer.concat([header, Buffer.alloc(10)]));
  p.write(Buffer.alloc(1000));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 1024 * 1024, `held ${grown} bytes for 1010 bytes of a 60 MiB message`);
  assert.equal(p.idle, false);
});

test('backend parser: a large split message still arrives whole, whatever the chunking', () => {
  const body = Buffer.alloc(1024 * 1024 + 3);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const wire = msg('d', body);
  for (const piece of [1, 4093, 65536, 300 * 1024]) {
    const got: Buffer[] = [];
    const p = new BackendParser((_c, b) => got.push(Buffer.from(b)));
    for (let at = 0; at < wire.length; at += piece) p.write(Buffer.from(wire.subarray(at, at + piece)));
    assert.equal(got.length, 1, `pieces of ${piece}`);
    assert.ok(got[0].equals(body), `pieces of ${piece}`);
    assert.ok(p.idle);
  }
});

test('row description and data row shorter than their fields say are protocol errors, not RangeErrors (fuzz regression)', () => {
  const rd = rowDescription(['spcoid', 'spclocation']).subarray(5);
  const dr = dataRow(['16385', '/srv/ts']).subarray(5);
  const fixtures: Array<[string, () => unknown]> = [
    ['empty RowDescription', () => parseRowDescription(Buffer.alloc(0))],
    ['RowDescription of 1 byte', () => parseRowDescription(Buffer.from([0]))],
    ['RowDescription cut inside the column attributes', () => parseRowDescription(rd.subarray(0, rd.length - 5))],
    ['empty DataRow', () => parseDataRow(Buffer.alloc(0))],
    ['DataRow cut inside a length', () => parseDataRow(dr.subarray(0, 4))],
    ['DataRow with a negative length other than -1', () => parseDataRow(Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xfe]))],
    ['DataRow with more columns than bytes', () => parseDataRow(Buffer.from([0xff, 0xff]))],
  ];
  for (const [name, f] of fixtures) assert.throws(f, ProtocolError, name);
});

test('an invalid length names a non-printable message type in hex, keeping the error on one line (fuzz regression)', () => {
  assert.throws(
    () => new BackendParser(() => {}).write(Buffer.from([0x0a, 0x7f, 0xff, 0xff, 0xff])),
    (e: Error) => e instanceof ProtocolError && e.message === 'invalid message length 2147483647 for message type 0x0a from server',
  );
  assert.throws(() => new BackendParser(() => {}).write(Buffer.from([0x64, 0, 0, 0, 1])), /for message type 'd' from server$/);
});

test('backend parser: split CopyData joined for a handler that keeps nothing reuse one buffer; the bytes are each message’s; other handlers get a buffer each', () => {
  const bodies = [Buffer.alloc(130_000, 1), Buffer.alloc(90_000, 2), Buffer.alloc(130_000, 3), Buffer.alloc(20, 4)];
  const wire = Buffer.concat([...bodies.map((b) => copyData(b)), msg('c', Buffer.alloc(0))]);
  for (const transient of [true, false]) {
    const seen: { bytes: string; buffer: ArrayBufferLike }[] = [];
    const p = new BackendParser(
      (code, body) => {
        if (code === 0x64) seen.push({ bytes: body.toString('hex'), buffer: body.buffer });
      },
      { wantParts: () => false, part: () => assert.fail('no parts asked for'), reuseJoined: () => transient },
    );
    // 64 KiB reads, as a socket gives them: the three large messages straddle reads and are joined.
    for (let at = 0; at < wire.length; at += 65536) p.write(Buffer.from(wire.subarray(at, at + 65536)));
    assert.ok(p.idle);
    assert.deepEqual(seen.map((s) => s.bytes), bodies.map((b) => b.toString('hex')), 'each message whole, as sent');
    const joined = new Set([seen[0].buffer, seen[1].buffer, seen[2].buffer]);
    assert.equal(joined.size, transient ? 1 : 3, transient ? 'one buffer joins them all' : 'a buffer per message when the handler may keep it');
  }
});
