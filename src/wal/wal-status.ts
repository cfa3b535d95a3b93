/**
 * Standby status updates of the WAL receiver: what it reports and how often.
 * Split from wal-receiver.ts: what the server learns from us (and so when a
 * slot may release WAL) is a decision of its own.
 */
import { encodeStatusUpdate, pgTimestamp } from '../codec/protocol/streaming-messages';
import type { WalSpool } from './wal-spool';

/**
 * Milliseconds between updates: `statusInterval` (default 10 s,
 * pg_basebackup's -s), and with a timeout at least every third of it, so
 * that an idle server still answers (a keepalive) and silence means trouble.
 */
export function statusEvery(statusInterval: number | undefined, timeoutMs: number | undefined): number {
  return Math.min(statusInterval ?? 10_000, timeoutMs ? timeoutMs / 3 : Infinity);
}

/**
 * write = received; flush = end of the last complete segment when a slot is
 * used (so the slot may release older WAL), else 0; apply = 0.
 */
export function statusUpdate(spool: WalSpool, withSlot: boolean, timeoutMs: number | undefined): Buffer {
  return encodeStatusUpdate({
    write: spool.position,
    flush: withSlot ? spool.completedUpTo : 0n,
    apply: 0n,
    clientTime: pgTimestamp(Date.now()),
    // The server answers with a keepalive: proof of life for the watchdog.
    replyRequested: Boolean(timeoutMs),
  });
}
