import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeStreamingMessage,
  encodeStatusUpdate,
  pgTimestamp,
  type StreamingMessage,
} from '../../../../src/codec/protocol/streaming-messages';
import { BackendParser, frontendMessage } from '../../../../src/codec/protocol/backend-parser';
import { ProtocolError } from '../../../../src/errors';

/** Named fixtures: CopyData payloads as walsender.c builds them. */
function xlogData(dataStart: bigint, walEnd: bigint, sendTime: bigint, wal: Buffer): Buffer {
  const h = Buffer.alloc(25);
  h[0] = 0x77; // 'w'
  h.writeBigUInt64BE(dataStart, 1);
  h.writeBigUInt64BE(walEnd, 9);
  h.writeBigInt64BE(sendTime, 17);
  return Buffer.concat([h, wal]);
}
function keepalive(walEnd: bigint, sendTime: bigint, replyRequested: boolean): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x6b; // 'k'
  b.writeBigUInt64BE(walEnd, 1);
  b.writeBigInt64BE(sendTime, 9);
  b[17] = replyRequested ? 1 : 0;
  return b;
}

const fixtures = {
  /** First message of a stream started at 0/3000000: WAL beginning at a segment boundary. */
  walAtSegmentStart: xlogData(0x3000000n, 0x3000100n, 777_000_000n, Buffer.from('0123456789abcdef', 'hex')),
  /** An LSN above 2^53: must not lose precision. */
  walHighLsn: xlogData(0xffff_ffff_0000_0000n + 0x28n, 0xffff_ffff_ffff_0000n, 1n, Buffer.from([9])),
  /** Header only: a message carrying no WAL bytes is legal. */
  walEmpty: xlogData(0x1000000n, 0x1000000n, 0n, Buffer.alloc(0)),
  keepaliveReplyRequested: keepalive(0x3000100n, 123_456_789n, true),
  keepaliveQuiet: keepalive(0x3000100n, 5n, false),
};

test('XLogData: header fields as bigint, WAL bytes as a subarray of the payload', () => {
  const m = decodeStreamingMessage(fixtures.walAtSegmentStart);
  assert.equal(m.kind, 'xlogdata');
  if (m.kind !== 'xlogdata') return;
  assert.equal(m.dataStart, 0x3000000n);
  assert.equal(m.walEnd, 0x3000100n);
  assert.equal(m.sendTime, 777_000_000n);
  assert.equal(m.data.toString('hex'), '0123456789abcdef');
  assert.equal(m.data.buffer, fixtures.walAtSegmentStart.buffer, 'no copy');

  const high = decodeStreamingMessage(fixtures.walHighLsn);
  assert.equal(high.kind === 'xlogdata' && high.dataStart, 0xffff_ffff_0000_0028n);
  const empty = decodeStreamingMessage(fixtures.walEmpty);
  assert.equal(empty.kind === 'xlogdata' && empty.data.length, 0);
});

test('keepalive: replyRequested is the last byte', () => {
  assert.deepEqual(decodeStreamingMessage(fixtures.keepaliveReplyRequested), {
    kind: 'keepalive',
    walEnd: 0x3000100n,
    sendTime: 123_456_789n,
    replyRequested: true,
  });
  const quiet = decodeStreamingMessage(fixtures.keepaliveQuiet);
  assert.equal(quiet.kind === 'keepalive' && quiet.replyRequested, false);
});

test('malformed messages are protocol errors', () => {
  assert.throws(() => decodeStreamingMessage(Buffer.alloc(0)), ProtocolError);
  assert.throws(() => decodeStreamingMessage(fixtures.walAtSegmentStart.subarray(0, 24)), /shorter than its 25-byte header/);
  assert.throws(() => decodeStreamingMessage(fixtures.keepaliveQuiet.subarray(0, 17)), /keepalive message has 17 bytes/);
  assert.throws(() => decodeStreamingMessage(Buffer.from('x')), /unknown message type 0x78/);
});

test('status update: the 34 bytes receivelog.c sends', () => {
  const b = encodeStatusUpdate({ write: 0x3000100n, flush: 0x3000000n, apply: 0n, clientTime: 0x0102030405060708n, replyRequested: false });
  assert.equal(
    b.toString('hex'),
    '72' + '0000000003000100' + '0000000003000000' + '0000000000000000' + '0102030405060708' + '00',
  );
  assert.equal(encodeStatusUpdate({ write: 1n, flush: 0n, apply: 0n, clientTime: 0n, replyRequested: true })[33], 1);
});

test('pgTimestamp: microseconds since 2000-01-01 UTC', () => {
  assert.equal(pgTimestamp(Date.UTC(2000, 0, 1)), 0n);
  assert.equal(pgTimestamp(Date.UTC(2000, 0, 1, 0, 0, 1, 500)), 1_500_000n);
  assert.ok(pgTimestamp(Date.UTC(1999, 11, 31)) < 0n);
});

/** What the server sends after START_REPLICATION, framed: CopyBothResponse, then CopyData. */
const wire = Buffer.concat([
  frontendMessage('W', Buffer.from([0, 0, 0])),
  frontendMessage('d', fixtures.walAtSegmentStart),
  frontendMessage('d', fixtures.keepaliveReplyRequested),
  frontendMessage('d', xlogData(0x3000008n, 0x3000100n, 2n, Buffer.alloc(40, 0xab))),
  frontendMessage('d', fixtures.keepaliveQuiet),
]);

function decodeWire(chunks: Buffer[]): StreamingMessage[] {
  const out: StreamingMessage[] = [];
  const p = new BackendParser((code, body) => {
    if (code === 0x64) out.push(decodeStreamingMessage(body));
  });
  for (const c of chunks) p.write(c);
  assert.ok(p.idle);
  return out;
}

test('the stream decodes the same however the socket splits it (every one and two split points)', () => {
  const whole = decodeWire([wire]);
  assert.equal(whole.length, 4);
  for (let i = 1; i < wire.length; i++) {
    assert.deepEqual(decodeWire([wire.subarray(0, i), wire.subarray(i)]), whole, `split at ${i}`);
  }
  for (let i = 1; i < wire.length; i += 3) {
    for (let j = i + 1; j < wire.length; j += 5) {
      assert.deepEqual(decodeWire([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]), whole, `split at ${i}, ${j}`);
    }
  }
  const bytes = Buffer.concat(whole.map((m) => (m.kind === 'xlogdata' ? m.data : Buffer.alloc(0))));
  assert.equal(bytes.length, 48);
});
