/**
 * The stages an S3 backup adds to the backup pipeline (src/pipeline/backup.ts):
 *
 *   full:         … ─► chunk-map-build (not emitted) ─► S3 sink (stores the map as `chunkmap`)
 *   incremental:  … ─► chunk-diff (against the parent's chunkmap) ─► delta-pack ─► S3 sink
 *
 * The parent is found, its chain walked (src/s3/chain.ts) and its chunk map
 * read before the server is contacted, so a chain too long, a parent that
 * is incomplete or keeps no map, is refused with nothing uploaded.
 */
import type { Transform } from 'node:stream';
import { UsageError } from '../errors';
import { makeS3Client } from '../s3/client';
import { Repository } from '../s3/repository';
import { backupChain, DEFAULT_MAX_CHAIN, incrementalsIn, readChunkMap } from '../s3/chain';
import { BACKUP_ID, isS3Url, parseS3Url, showS3, splitBackupId, type S3Location } from '../s3/s3-url';
import type { S3TargetOptions } from '../s3/target-options';
import type { S3SinkOptions } from '../../sinks/s3';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { chunkDiff } from '../../transforms/chunk-diff';
import { deltaPack } from '../../transforms/delta-pack';
import { PgbbError } from '../errors';
import { objectDecoder } from '../sources/s3-backup-source';
import type { BackupRecord } from '../s3/backup-record';
import type { ObjectTransform } from '../s3/object-writer';
import type { ChunkFiles, ChunkMap } from '../codec/chunkmap/chunk-map';
import { CONTROL_FILE } from '../refresh/walk-target';

export interface S3BackupStages {
  observers: Transform[];
  sink: Pick<S3SinkOptions, 'parent' | 'chunkMap'>;
  /** Once the backup is over (committed or not): what the sink's map held. */
  release?: () => void;
}

/** `encrypted`: the new backup's objects are encrypted (age); an incremental's parent must be, too, or not, as it is. */
export async function s3BackupStages(loc: S3Location, o: S3TargetOptions, chunkSize?: number, encrypted = false): Promise<S3BackupStages> {
  if (o.incrementalFrom === undefined) {
    const build = chunkMapBuild({ emit: false, chunkSize });
    return { observers: [build], sink: { chunkMap: () => build.result?.map ?? null }, release: () => build.release() };
  }
  const maxChain = o.maxChain ?? DEFAULT_MAX_CHAIN;
  const client = o.client ?? makeS3Client();
  try {
    const repo = new Repository(client, loc);
    const id = await parentId(repo, o.incrementalFrom);
    const record = await repo.record(id);
    if (!record) throw new PgbbError('not_a_backup', `${repo.where(id)} is missing or incomplete: it cannot be the parent of an incremental backup`);
    const chain = await backupChain(repo, { id, record });
    const length = incrementalsIn(chain) + 1;
    if (length > maxChain) {
      throw new UsageError(`an incremental backup on ${repo.where(id)} would make its chain ${length} incrementals long, more than --max-chain ${maxChain}: take a full backup (--full)`);
    }
    const map = await readChunkMap(repo, { id, record }, parentDecoder(repo, { id, record }, encrypted, o));
    const diff = chunkDiff({ prior: without(map, CONTROL_FILE), chunkSize });
    return {
      observers: [diff, deltaPack(map.chunkSize)],
      sink: { parent: { id, systemIdentifier: record.systemIdentifier }, chunkMap: () => diff.result?.map ?? null },
    };
  } finally {
    if (!o.client) client.destroy();
  }
}

/**
 * How the parent's chunk map is read. A chain is encrypted throughout or
 * not at all: a plain incremental would put an encrypted backup's changed
 * data in the clear, and an encrypted one on a plain parent is a chain half
 * of whose restore needs no key.
 */
function parentDecoder(repo: Repository, parent: { id: string; record: BackupRecord }, encrypted: boolean, o: S3TargetOptions): ObjectTransform | undefined {
  const sealed = parent.record.transform !== null;
  const where = repo.where(parent.id);
  if (sealed && !encrypted) throw new UsageError(`${where} is encrypted ("${parent.record.transform}"): an incremental backup on it must be encrypted too (give its key), or take a full backup (--full)`);
  if (!sealed && encrypted) throw new UsageError(`${where} is not encrypted: an encrypted backup cannot be an incremental on it; take a full backup (--full)`);
  if (!sealed) return undefined;
  if (parent.record.transform !== 'age') throw new UsageError(`${where} was written through "${parent.record.transform}", which pgbb cannot read here: take a full backup (--full)`);
  if (!o.parentKey) {
    throw new UsageError(`${where} is encrypted: reading its chunk map needs a key that opens it (the passphrase, or --encrypt-identity-file with --encrypt-recipients-file)`);
  }
  return objectDecoder({ repo, ...parent }, { decrypt: o.parentKey });
}

/** The parent --incremental-from names: `latest`, an id, or an s3:// URL of this repository. */
async function parentId(repo: Repository, given: string): Promise<string> {
  let named: string | null;
  if (given === 'latest' || BACKUP_ID.test(given)) named = given;
  else if (isS3Url(given)) {
    const loc = parseS3Url(given);
    const latest = loc.prefix === 'latest' || loc.prefix.endsWith('/latest');
    const split = latest ? { repo: { bucket: loc.bucket, prefix: loc.prefix.replace(/\/?latest$/, '') }, id: 'latest' } : splitBackupId(loc);
    if (split.id === null) throw new UsageError(`--incremental-from names no backup (${given}): give s3://…/<id> or s3://…/latest (see pgbb list)`);
    if (split.repo.bucket !== repo.loc.bucket || split.repo.prefix !== repo.loc.prefix) {
      throw new UsageError(`--incremental-from names ${given}, which is not in ${showS3(repo.loc)}: an incremental backup stands on a backup of its own repository`);
    }
    named = split.id;
  } else throw new UsageError(`with an s3:// target --incremental-from takes latest, a backup id or s3://…/<id>, not "${given}"`);
  if (named !== 'latest') return named;
  const complete = (await repo.list()).filter((b) => b.record);
  if (!complete.length) throw new PgbbError('not_a_backup', `${repo.where()} holds no complete backup to be incremental from: take a full backup first`);
  return complete[complete.length - 1].id;
}

/**
 * The map without `key`: so that chunk-diff passes that file whole. For
 * global/pg_control, which a restore's refresh-directory sink writes
 * whole, under a pending name (a refresh's prior never lists it).
 */
function without(map: ChunkMap, key: string): ChunkMap {
  const f = map.files;
  const files: ChunkFiles = {
    get size() {
      return f.size - (f.has(key) ? 1 : 0);
    },
    get: (k) => (k === key ? undefined : f.get(k)),
    has: (k) => k !== key && f.has(k),
    set: () => {
      throw new PgbbError('chunk_map', 'the parent\'s chunk map is read-only');
    },
    keys: function* () {
      for (const k of f.keys()) if (k !== key) yield k;
    },
    values: function* () {
      for (const [k, v] of f.entries()) if (k !== key) yield v;
    },
    entries: function* () {
      for (const e of f.entries()) if (e[0] !== key) yield e;
    },
    [Symbol.iterator]() {
      return this.entries();
    },
  };
  return { ...map, files };
}
