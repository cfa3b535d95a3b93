/**
 * -j N: what the builder puts after the parallel source in place of the
 * server's work — page checksums verified client-side (a failing page read
 * again once through the source) and the backup_manifest built — before the
 * stages every backup shares (observers.ts; no manifest to verify):
 *
 *   ParallelSource ─► [page-checksum-verify] ─► [manifest-build] ─► tally ─► [throttle] ─► [progress]
 */
import type { Duplex } from 'node:stream';
import { manifestBuild } from '../../transforms/manifest-build';
import { pageChecksumVerify } from '../../transforms/page-checksum-verify';
import type { ParallelSource } from '../sources/parallel-source';
import type { BackupPlan } from './backup-plan';

/** `source()` is the source once built (the stages are made before it). */
export function parallelStages(plan: Pick<BackupPlan, 'verifyChecksums' | 'manifest' | 'manifestChecksums' | 'manifestForceEncode'>, source: () => ParallelSource | null): Duplex[] {
  return [
    ...(plan.verifyChecksums ? [pageChecksumVerify({ reread: (path, block) => source()?.reread(path, block) ?? Promise.resolve(null) })] : []),
    // shareCrc: a plain backup's (or a refresh's) chunk map follows; for -F tar it is left unused on the events, a few bytes each.
    ...(plan.manifest ? [manifestBuild({ checksumAlgorithm: plan.manifestChecksums, forceEncode: plan.manifestForceEncode, shareCrc: true })] : []),
  ];
}
