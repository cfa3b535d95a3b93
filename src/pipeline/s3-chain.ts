/**
 * Restore and verify of an S3 incremental backup: its chain walked from the
 * full backup up (src/s3/chain.ts), each link applied to the directory
 * the one before it left:
 *
 *   full:     restore (src/pipeline/restore.ts) ─► its chunk map into pg_wal/pgbb.chunkmap
 *   each link: S3 source ─► delta-unpack ─► refresh-directory sink (changed chunks in place,
 *             new files, removed ones; its manifest and map written last)
 *   then:     the directory verified against the last link's manifest (every file,
 *             its size and CRC32C), so a chain that does not rebuild the backup
 *             exactly fails instead of leaving a cluster that starts with wrong data;
 *             -R's files written last.
 *
 * Verify rebuilds the chain the same way into a scratch directory (removed
 * after) and checks it as a plain backup: there is no other way to see every
 * file whole. A failure removes what the restore created.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PgbbError } from '../errors';
import { writeRecoveryFiles } from '../standby/recovery-files';
import type { RecoverySettings } from '../codec/recovery-settings';
import type { BackupEvent } from '../events';
import { CHUNK_MAP_FILE, encodeChunkMapPieces } from '../codec/chunkmap/chunk-map';
import { tablespaceLocations } from '../codec/chunkmap/tablespace-locations';
import { backupChain, readChunkMap, type ChainLink } from '../s3/chain';
import type { Repository } from '../s3/repository';
import { objectDecoder, resolveS3Backup, s3BackupSource, type S3SourceOptions } from '../sources/s3-backup-source';
import type { DecryptKey } from '../crypto/age-keys';
import { loadPriorState } from '../refresh/prior-state';
import { lockForRefresh } from '../io/target-lock';
import { writeNewFile } from '../io/durable';
import { makeTempDir } from '../io/temp-dirs';
import { RefreshDirectorySink } from '../../sinks/refresh-directory';
import { deltaUnpack } from '../../transforms/delta-unpack';
import { openBackupSource } from '../sources/open-backup';
import { LIMITS, readLimited } from '../io/read-limited';
import { manifestVerify } from '../../transforms/manifest-verify';
import type { EndEvent, StartEvent } from '../events';
import { compose } from './compose';
import { discard, newTally, tallyStage } from './observers';

/** What restoreChain reads of restore's options (restore.ts passes its own; this file does not import it, which imports this one). */
export type ChainRestoreOptions = { source: string; target: string; s3?: S3SourceOptions; decrypt?: DecryptKey; signal?: AbortSignal; standby?: RecoverySettings } & TablespaceAndSync;
type TablespaceAndSync = { tablespaceMapping?: Record<string, string>; sync?: boolean; tablespacesAtRecordedLocations?: boolean };

export interface ChainRestoreResult {
  start: StartEvent;
  end: EndEvent;
  files: number;
  bytes: number;
  seconds: number;
  location?: string;
}

export interface ChainVerifyOptions {
  source: string;
  s3?: S3SourceOptions;
  decrypt?: DecryptKey;
  signal?: AbortSignal;
}

export interface S3Chain {
  repo: Repository;
  links: ChainLink[];
}

/**
 * The chain of the S3 backup `source` means, or null when it is a full
 * backup (read as it is). With a chain, the caller destroys its client
 * (unless it gave one).
 */
export async function s3ChainOf(source: string, o: S3SourceOptions = {}): Promise<S3Chain | null> {
  const b = await resolveS3Backup(source, { ...o, link: true });
  try {
    if (b.record?.kind !== 'incremental') return null;
    return { repo: b.repo, links: await backupChain(b.repo, { id: b.id, record: b.record }) };
  } catch (err) {
    if (!o.client) b.repo.client.destroy();
    throw err;
  } finally {
    if (!o.client && b.record?.kind !== 'incremental') b.repo.client.destroy();
  }
}

/** `f` on the chain of `source` (its client destroyed after), or null for a full backup. */
export async function withS3Chain<T>(source: string, o: S3SourceOptions | undefined, f: (chain: S3Chain) => Promise<T>): Promise<T | null> {
  const chain = await s3ChainOf(source, o);
  if (!chain) return null;
  try {
    return await f(chain);
  } finally {
    if (!o?.client) chain.repo.client.destroy();
  }
}

/** Restores the chain into `o.target`: its full backup through `restoreFull` (restore itself), then each link. */
export async function restoreChain<O extends ChainRestoreOptions, R extends ChainRestoreResult>(o: O, chain: S3Chain, restoreFull: (o: O) => Promise<R>): Promise<R> {
  const began = process.hrtime.bigint();
  const mapping = o.tablespaceMapping ?? {};
  const places = [o.target, ...Object.values(mapping)];
  const fresh = await Promise.all(places.map(isAbsentOrEmpty));
  const { repo, links } = chain;
  const last = links[links.length - 1];
  const base = await restoreFull({ ...o, source: repo.where(links[0].id), standby: undefined });
  try {
    // An encrypted chain's chunk maps are decrypted like its archives (each link's record says how it was written).
    const s3 = { ...o.s3, client: repo.client, decrypt: o.s3?.decrypt ?? o.decrypt };
    const map = await readChunkMap(repo, links[0], objectDecoder({ repo, ...links[0] }, s3));
    map.header = { ...map.header, tablespaces: tablespaceLocations(base.start.tablespaces, o.tablespacesAtRecordedLocations ? {} : mapping) };
    await writeNewFile(path.join(o.target, CHUNK_MAP_FILE), encodeChunkMapPieces(map), o.sync ?? true);
    for (const link of links.slice(1)) await applyLink(o, repo, link, s3, mapping);
    const rebuilt = await checkRebuilt(o.target, repo.where(last.id), o.signal);
    // -R after the check: the files it changes are not the backup's.
    if (o.standby) await writeRecoveryFiles(o.target, o.standby, o.sync ?? true);
    return { ...base, ...rebuilt, seconds: Number(process.hrtime.bigint() - began) / 1e9, location: repo.where(last.id) };
  } catch (err) {
    // What this restore made goes: directories it created whole, the contents of the empty ones it was given.
    await Promise.all(places.map((p, i) => (fresh[i] ? empty(p, fresh[i] === 'absent') : undefined)));
    throw err;
  }
}

/** One link onto the directory its parent left. */
async function applyLink(o: ChainRestoreOptions, repo: Repository, link: ChainLink, s3: S3SourceOptions, mapping: Record<string, string>): Promise<void> {
  const lock = await lockForRefresh(o.target);
  try {
    const prior = await loadPriorState(o.target);
    const map = await readChunkMap(repo, link, objectDecoder({ repo, ...link }, s3));
    const b = await resolveS3Backup(repo.where(link.id), { ...s3, link: true });
    await compose({
      sink: new RefreshDirectorySink({ prior, tablespaceMapping: mapping, sync: o.sync ?? true }),
      source: async () => s3BackupSource(b, s3),
      observers: [deltaUnpack({ map, where: repo.where(link.id), tablespaces: { existing: prior.tablespaces, mapping } })],
      signal: o.signal,
    });
  } finally {
    await lock.release();
  }
}

/**
 * The rebuilt directory against the manifest the last link brought: every
 * file it lists, at its size and CRC32C (WAL and pages are verify's).
 */
async function checkRebuilt(dir: string, where: string, signal?: AbortSignal): Promise<Pick<ChainRestoreResult, 'start' | 'end' | 'files' | 'bytes'>> {
  const manifest = await readLimited(path.join(dir, 'backup_manifest'), LIMITS.manifest);
  if (!manifest) throw new PgbbError('verify', `the chain of ${where} left no backup_manifest in ${dir}`);
  const check = manifestVerify({ require: true, manifest });
  const tally = newTally();
  const { stream } = await openBackupSource(dir, process.stdin);
  try {
    await compose({ source: stream, observers: [tallyStage(tally), check], sink: discard(), signal });
  } catch (err) {
    throw new PgbbError('verify', `the chain of ${where} did not rebuild it exactly: ${(err as Error).message}`, { cause: err });
  }
  return { start: tally.start!, end: tally.end!, files: check.result?.files ?? 0, bytes: check.result?.bytes ?? 0 };
}

/**
 * Verify of an incremental backup: its chain rebuilt in a scratch directory
 * (restoreChain, with `restoreFull`), checked there by `verifyDir` as a
 * plain backup (verify itself), removed.
 */
export async function verifyChain<V extends ChainVerifyOptions, Rep, O extends ChainRestoreOptions, R extends ChainRestoreResult>(
  o: V,
  chain: S3Chain,
  steps: { restoreFull: (o: O) => Promise<R>; verifyDir: (o: V) => Promise<Rep> },
  scratchRoot = os.tmpdir(),
): Promise<Rep> {
  const dir = makeTempDir(scratchRoot, 'verify-chain');
  try {
    const target = path.join(dir, 'data');
    const s3 = { ...o.s3, decrypt: o.s3?.decrypt ?? o.decrypt };
    const mapping = await scratchTablespaces(chain, dir, s3);
    await restoreChain({ source: o.source, s3, decrypt: s3.decrypt, target, sync: false, tablespaceMapping: mapping, signal: o.signal } as O, chain, steps.restoreFull);
    return { ...(await steps.verifyDir({ ...o, source: target })), format: 's3', location: chain.repo.where(chain.links[chain.links.length - 1].id) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Every tablespace the chain's links name, mapped into the scratch directory (never to where the server keeps it). */
async function scratchTablespaces(chain: S3Chain, dir: string, s3: S3SourceOptions = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const link of chain.links) {
    const b = await resolveS3Backup(chain.repo.where(link.id), { ...s3, client: chain.repo.client, link: true });
    // Only the start of the stream is read (the descriptor at the head of the first archive).
    const stream = s3BackupSource(b, { ...s3, client: chain.repo.client });
    try {
      for await (const ev of stream as AsyncIterable<BackupEvent>) {
        if (ev.type !== 'start') continue;
        for (const ts of ev.tablespaces) if (ts.oid !== null) out[ts.location.replace(/\/+$/, '')] = path.join(dir, `ts-${ts.oid}`);
        break;
      }
    } finally {
      stream.destroy();
    }
  }
  return out;
}

async function isAbsentOrEmpty(p: string): Promise<'absent' | 'empty' | null> {
  const names = await fs.readdir(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : []));
  return names === null ? 'absent' : names.length === 0 ? 'empty' : null;
}

async function empty(p: string, remove: boolean): Promise<void> {
  if (remove) return fs.rm(p, { recursive: true, force: true });
  for (const n of await fs.readdir(p).catch(() => [] as string[])) await fs.rm(path.join(p, n), { recursive: true, force: true });
}
