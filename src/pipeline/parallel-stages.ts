/**
 * -j N (and --local-pgdata): the parallel source of a plan, and what the builder puts after it in place of the
 * server's work — page checksums verified client-side (a failing page read
 * again once through the source) and the backup_manifest built — before the
 * stages every backup shares (observers.ts; no manifest to verify):
 *
 *   ParallelSource ─► [page-checksum-verify] ─► [manifest-build] ─► tally ─► [throttle] ─► [progress]
 */
import type { Duplex } from 'node:stream';
import { manifestBuild } from '../../transforms/manifest-build';
import { pageChecksumVerify } from '../../transforms/page-checksum-verify';
import { ParallelSource } from '../sources/parallel-source';
import type { RateLimiter } from '../rate-limiter';
import type { WalPlace } from '../sink';
import type { BackupPlan } from './backup-plan';
import { walPlaceFor } from './live-source';

/** -j N or --local-pgdata: the parallel source of a plan, WAL placed as replicationSourceFor places it. */
export function parallelSourceFor(plan: BackupPlan, place: WalPlace | null, rateLimiter: RateLimiter | null, remoteHashDir?: string): ParallelSource {
  const wal = walPlaceFor(plan, place);
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

/** `source()` is the source once built (the stages are made before it). */
export function parallelStages(plan: Pick<BackupPlan, 'verifyChecksums' | 'manifest' | 'manifestChecksums' | 'manifestForceEncode'>, source: () => ParallelSource | null): Duplex[] {
  return [
    ...(plan.verifyChecksums ? [pageChecksumVerify({ reread: (path, block) => source()?.reread(path, block) ?? Promise.resolve(null) })] : []),
    // shareCrc: a plain backup's (or a refresh's) chunk map follows; for -F tar it is left unused on the events, a few bytes each.
    ...(plan.manifest ? [manifestBuild({ checksumAlgorithm: plan.manifestChecksums, forceEncode: plan.manifestForceEncode, shareCrc: true })] : []),
  ];
}
