/**
 * The live source the backup-taking builders (backup, refresh) share, from
 * their settled plan, and the one rate limiter that paces it (-j's parallel
 * source: src/pipeline/parallel-stages.ts).
 */
import { ReplicationSource } from '../sources/replication-source';
import { RateLimiter } from '../rate-limiter';
import type { WalPlace } from '../sink';
import type { BackupPlan } from './backup-plan';

/**
 * The live source of a plan (backup's and refresh's), writing streamed WAL
 * where the sink said; a sink with no place of its own gets --wal-spool, else
 * the source's default spool.
 */
export function replicationSourceFor(
  plan: BackupPlan,
  place: WalPlace | null,
  extra: { rateLimiter?: RateLimiter; incrementalFrom?: Buffer; recycleBuffers?: boolean } = {},
): ReplicationSource {
  const wal = walPlaceFor(plan, place);
  return new ReplicationSource({
    clientConfig: plan.clientConfig,
    label: plan.label,
    checkpoint: plan.checkpoint,
    // Explicit: the source's own default is not the CLI's.
    wal: plan.wal,
    slot: plan.slot,
    noSlot: plan.noSlot,
    manifest: plan.manifest,
    manifestChecksums: plan.manifestChecksums,
    manifestForceEncode: plan.manifestForceEncode,
    tablespaceMap: plan.tablespaceMap,
    verifyChecksums: plan.verifyChecksums,
    // An S3 sink sizes its upload parts from the server's estimate.
    progress: plan.progress || plan.sink === 's3',
    timeout: plan.timeout,
    ...(plan.serverCompress ? { serverCompress: plan.serverCompress } : {}),
    ...wal,
    ...(extra.rateLimiter ? { rateLimiter: extra.rateLimiter } : {}),
    ...(extra.incrementalFrom ? { incrementalFrom: extra.incrementalFrom } : {}),
    ...(extra.recycleBuffers ? { recycleBuffers: true } : {}),
  });
}

/** Where streamed WAL goes: where the sink said; a sink with no place of its own gets --wal-spool, else the source's default spool. */
export function walPlaceFor(plan: Pick<BackupPlan, 'walSpool'>, place: WalPlace | null): WalPlace | { walSpool?: string } {
  return place ?? (plan.walSpool !== null ? { walSpool: plan.walSpool } : {});
}

/** Client-side, so that one bucket covers the WAL stream too (the server's MAX_RATE paces only its own connection, in bursts). */
export function rateLimiterFor(plan: Pick<BackupPlan, 'maxRate'>): RateLimiter | null {
  return plan.maxRate !== null ? new RateLimiter(plan.maxRate * 1024) : null;
}

