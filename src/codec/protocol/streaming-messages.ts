/**
 * The CopyData sub-messages of physical streaming replication
 * (START_REPLICATION, walsender.c / receivelog.c). Pure functions.
 *
 * In:  one whole CopyData payload from the server (framing is BackendParser's job).
 * Out: a discriminated union:
 *   'w' XLogData:  int64 dataStart, int64 walEnd, int64 sendTime, WAL bytes
 *   'k' keepalive: int64 walEnd, int64 sendTime, byte replyRequested
 * And the client's Standby Status Update to send back:
 *   'r' int64 write, int64 flush, int64 apply, int64 clientTime, byte replyRequested
 * Integers are big-endian; LSNs and times are bigint (they exceed 2^53).
 * Errors: ProtocolError for an unknown type or a message too short for its header.
 */
import { ProtocolError } from '../../errors';

export interface XLogDataMessage {
  kind: 'xlogdata';
  /** LSN of the first byte of `data`. */
  dataStart: bigint;
  /** The server's current end of WAL. */
  walEnd: bigint;
  /** Server clock, µs since 2000-01-01 UTC. */
  sendTime: bigint;
  /** WAL bytes: a subarray of the payload, not a copy. */
  data: Buffer;
}

export interface KeepaliveMessage {
  kind: 'keepalive';
  walEnd: bigint;
  sendTime: bigint;
  /** The server wants a status update now (it is nearing wal_sender_timeout). */
  replyRequested: boolean;
}

export type StreamingMessage = XLogDataMessage | KeepaliveMessage;

export interface StatusUpdate {
  /** Last WAL byte received + 1. */
  write: bigint;
  /** Last WAL byte safely stored + 1; 0 when not reported. */
  flush: bigint;
  /** Last WAL byte applied + 1; 0 for a receiver that applies nothing. */
  apply: bigint;
  /** Client clock, µs since 2000-01-01 UTC. */
  clientTime: bigint;
  replyRequested: boolean;
}

const XLOGDATA_HEADER = 1 + 8 + 8 + 8;
const KEEPALIVE_LENGTH = 1 + 8 + 8 + 1;
const STATUS_LENGTH = 1 + 8 + 8 + 8 + 8 + 1;

/** Unix epoch ms of 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch. */
const PG_EPOCH_MS = 946_684_800_000;

export function decodeStreamingMessage(payload: Buffer): StreamingMessage {
  if (payload.length === 0) throw new ProtocolError('empty CopyData message in WAL stream');
  const type = payload[0];
  switch (type) {
    case 0x77: // 'w'
      if (payload.length < XLOGDATA_HEADER) {
        throw new ProtocolError(`WAL data message has ${payload.length} bytes, shorter than its ${XLOGDATA_HEADER}-byte header`);
      }
      return {
        kind: 'xlogdata',
        dataStart: payload.readBigUInt64BE(1),
        walEnd: payload.readBigUInt64BE(9),
        sendTime: payload.readBigInt64BE(17),
        data: payload.subarray(XLOGDATA_HEADER),
      };
    case 0x6b: // 'k'
      if (payload.length < KEEPALIVE_LENGTH) {
        throw new ProtocolError(`keepalive message has ${payload.length} bytes, expected ${KEEPALIVE_LENGTH}`);
      }
      return {
        kind: 'keepalive',
        walEnd: payload.readBigUInt64BE(1),
        sendTime: payload.readBigInt64BE(9),
        replyRequested: payload[17] !== 0,
      };
    default:
      throw new ProtocolError(`unknown message type 0x${type.toString(16).padStart(2, '0')} in WAL stream`);
  }
}

/** The CopyData payload of a Standby Status Update ('r'). */
export function encodeStatusUpdate(s: StatusUpdate): Buffer {
  const out = Buffer.allocUnsafe(STATUS_LENGTH);
  out[0] = 0x72; // 'r'
  out.writeBigUInt64BE(s.write, 1);
  out.writeBigUInt64BE(s.flush, 9);
  out.writeBigUInt64BE(s.apply, 17);
  out.writeBigInt64BE(s.clientTime, 25);
  out[33] = s.replyRequested ? 1 : 0;
  return out;
}

/** A JS time (ms since the Unix epoch) as PostgreSQL's µs since 2000-01-01 UTC. */
export function pgTimestamp(unixMs: number): bigint {
  return BigInt(Math.round((unixMs - PG_EPOCH_MS) * 1000));
}
