/**
 * restore: any backup pgbb writes, back into a data directory that starts —
 * what `pgbb restore` runs, and what a script calls.
 *
 *   backup ─► require-complete ─► manifest-verify ─► tally ─► drop-tablespace-map ─► recovery-config (-R) ─► directory sink
 *
 * The backup is checked against its manifest while it is restored, so a
 * damaged backup fails (and the half-restored directory is removed) instead
 * of starting with bad data. A backup without a manifest is refused unless
 * `noManifest`; one without backup_label or global/pg_control always is.
 * Restore writes outside the target only where the user said: tablespaces
 * go where -T maps them, or to their recorded location with
 * `tablespacesAtRecordedLocations` (each named through `onTablespace` first);
 * otherwise the restore is refused before anything is written. The sink is
 * readied (target and -T directories checked and created) before the backup
 * is opened.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors';
import { showPath } from '../codec/path-bytes';
import { openBackupSource, type BackupFormat } from '../sources/open-backup';
import { directoryManifestPieces } from '../sources/tar-backup-source';
import { previewManifest } from '../manifest/manifest-preview';
import type { S3SourceOptions } from '../sources/s3-backup-source';
import type { DecryptKey } from '../crypto/age-keys';
import { isS3Url } from '../s3/s3-url';
import { DirectorySink } from '../../sinks/directory';
import { lockTarget } from '../../sinks/target-dir';
import { canonical, within, type TablespacePlace } from '../../sinks/tablespace-places';
import { manifestVerify } from '../../transforms/manifest-verify';
import { recoveryConfig } from '../../transforms/recovery-config';
import { requireComplete } from '../../transforms/require-complete';
import { dropTablespaceMap } from '../../transforms/drop-tablespace-map';
import type { EndEvent, StartEvent } from '../events';
import { compose } from './compose';
import { restoreChain, withS3Chain } from './s3-chain';
import { newTally, tallyStage } from './observers';

export interface RestoreOptions {
  /** A backup directory, '-' for a tar stream on stdin, or s3://bucket/prefix[/<id>]. */
  source: string;
  /** For an s3:// source: --allow-incomplete, the inverse transform, a client. */
  s3?: S3SourceOptions;
  /** The key of an encrypted backup (age: a passphrase or X25519 identities). */
  decrypt?: DecryptKey;
  target: string;
  tablespaceMapping?: Record<string, string>;
  /** Default true (-N: false). */
  sync?: boolean;
  /** --tablespaces-at-recorded-locations: unmapped tablespaces go where the backup recorded them (else refused). */
  tablespacesAtRecordedLocations?: boolean;
  /** --no-manifest: restore a backup that has no backup_manifest (its files then go unchecked). */
  noManifest?: boolean;
  /** Told where each tablespace goes, before anything is written there. */
  onTablespace?: (place: TablespacePlace) => void;
  /** -R: write standby.signal (and primary_conninfo when given). */
  standby?: { primaryConninfo?: string; slot?: string };
  signal?: AbortSignal;
}

export interface RestoreResult {
  format: BackupFormat;
  start: StartEvent;
  end: EndEvent;
  files: number;
  bytes: number;
  /** Of `files` and `bytes`, WAL's (pg_wal/: segments, history, archive_status, and pgbb's chunk map in a plain backup). */
  walFiles: number;
  walBytes: number;
  seconds: number;
  /** False when there was no manifest to check the files against (--no-manifest). */
  manifestChecked: boolean;
  /** The S3 backup read: s3://bucket/prefix/<id>. */
  location?: string;
}

export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const began = process.hrtime.bigint();
  if (typeof o.target !== 'string' || o.target === '') throw new UsageError('no target directory given');
  const mapping = o.tablespaceMapping ?? {};
  const remote = isS3Url(o.source);
  if (!remote) await refuseTargetsInSource(o.source, [o.target, ...Object.values(mapping)]);
  // An incremental backup is rebuilt from its chain (src/pipeline/s3-chain.ts).
  const rebuilt = remote ? await withS3Chain(o.source, { ...o.s3, decrypt: o.decrypt }, (chain) => restoreChain(o, chain, restore)) : null;
  if (rebuilt) return rebuilt;
  // A backup directory's manifest is known before its files: each is refused at its entry, before
  // its bytes are written, if the manifest does not list it at that size (a planted sparse terabyte).
  // (An S3 backup's manifest is checked where it comes, at the end, as a stream's is.)
  // Read ahead for the sizes only (then checked again where the stream brings it, never held whole).
  const ahead = o.source === '-' || remote ? null : await previewManifest(directoryManifestPieces(o.source, o.decrypt), { sizes: true });
  // One that does not parse is refused where it comes in the stream (after the label and control checks), as before.
  const verify = manifestVerify(ahead ? { failFast: true, listedSizes: ahead.sizes!, checksumAlgorithm: ahead.algorithm } : {});
  // Locked as backup locks its target: a second restore aimed at it is refused, instead of
  // racing this one and then, failing, removing what this one restored.
  const lock = await lockTarget(o.target);
  try {
    const complete = requireComplete({ manifest: !o.noManifest });
    const sink = new DirectorySink({
      target: o.target,
      tablespaceMapping: mapping,
      unmappedTablespaces: o.tablespacesAtRecordedLocations ? 'recorded' : 'refuse',
      onTablespace: o.onTablespace,
      beforeCommit: () => complete.check(),
      sync: o.sync ?? true,
    });
    const tally = newTally();
    let format: BackupFormat | null = null;
    let location: string | undefined;
    await compose({
      sink,
      source: async () => {
        const opened = await openBackupSource(o.source, process.stdin, o.s3, o.decrypt);
        location = opened.location;
        format = opened.format;
        return opened.stream;
      },
      observers: [complete, verify, tallyStage(tally), dropTablespaceMap(), ...(o.standby ? [recoveryConfig(o.standby)] : [])],
      signal: o.signal,
    });
    return {
      format: format!,
      start: tally.start!,
      end: tally.end!,
      files: tally.files,
      bytes: tally.bytes,
      walFiles: tally.walFiles,
      walBytes: tally.walBytes,
      seconds: Number(process.hrtime.bigint() - began) / 1e9,
      manifestChecked: verify.result?.checked ?? false,
      ...(location ? { location } : {}),
    };
  } finally {
    await lock.release();
  }
}

/**
 * A target inside the backup directory (or inside one of the tablespaces its
 * pg_tblspc links lead to) would be read back while it is written: the
 * restore copies itself into itself, level after level, until the disk is
 * full, and changes the backup. Refused before anything is created.
 */
async function refuseTargetsInSource(source: string, targets: string[]): Promise<void> {
  if (source === '-') return;
  const roots = [await canonical(source)];
  const links = await fs.readdir(path.join(source, 'pg_tblspc')).catch(() => [] as string[]);
  for (const oid of links.filter((n) => /^\d+$/.test(n))) roots.push(await canonical(path.join(source, 'pg_tblspc', oid)));
  for (const t of targets) {
    const at = await canonical(t);
    for (const r of roots) {
      if (within(at, r) || within(r, at)) {
        throw new UsageError(`"${showPath(path.resolve(t))}" lies inside the backup being restored ("${showPath(r)}"), or holds it: restore somewhere else`);
      }
    }
  }
}
