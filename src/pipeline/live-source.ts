/**
 * The live source the backup-taking builders (backup, refresh) share, from
 * their settled plan, and the one rate limiter that paces it.
 */
import { ReplicationSource } from '../sources/replication-source';
import { ParallelSource } from '../sources/parallel-source';
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
  const wal = place ?? (plan.walSpool !== null ? { walSpool: plan.walSpool } : {});
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

/** -j N or --local-pgdata: the parallel source of a plan, WAL placed as replicationSourceFor places it. */
export function parallelSourceFor(plan: BackupPlan, place: WalPlace | null, rateLimiter: RateLimiter | null, remoteHashDir?: string): ParallelSource {
  const wal = place ?? (plan.walSpool !== null ? { walSpool: plan.walSpool } : {});
  return new ParallelSource({
    clientConfig: plan.clientConfig,
    sqlConfig: plan.sqlConfig!,
    jobs: plan.jobs,
    ...(plan.localPgdata !== null ? { localDir: plan.localPgdata } : {}),
    ...(remoteHashDir ? { remoteHashDir } : {}),
    label: plan.label,
    checkpoint: plan.checkpoint,
    wal: plan.wal === 'none' ? 'none' : 'stream',
    slot: plan.slot,
    noSlot: plan.noSlot,
    timeout: plan.timeout,
    ...wal,
    ...(rateLimiter ? { rateLimiter } : {}),
  });
}

/** Client-side, so that one bucket covers the WAL stream too (the server's MAX_RATE paces only its own connection, in bursts). */
export function rateLimiterFor(plan: Pick<BackupPlan, 'maxRate'>): RateLimiter | null {
  return plan.maxRate !== null ? new RateLimiter(plan.maxRate * 1024) : null;
}

