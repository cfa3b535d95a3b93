/**
 * Incremental chains in an S3 repository: which backups an incremental
 * stands on, and the chunk map each backup keeps beside its record
 * (`<id>/chunkmap`, listed in the record's objects with its size and
 * CRC32C, so a download is checked like any other object).
 *
 * A chain is read from the newest backup back to its full one through the
 * records' `parent`. The bucket may be hostile: every parent must be a
 * complete backup of the same system, parents must be older than their
 * child (so no cycle), and the walk is capped.
 */
import type { Readable } from 'node:stream';
import { PgbbError, UsageError } from '../errors';
import { decodeChunkMap, type ChunkMap } from '../codec/chunkmap/chunk-map';
import type { BackupRecord } from './backup-record';
import { checkedObject } from './object-reader';
import type { ObjectTransform } from './object-writer';
import type { Repository } from './repository';

export const CHUNK_MAP_OBJECT = 'chunkmap';
/** Incrementals a chain may hold on top of its full backup unless --max-chain says otherwise. */
export const DEFAULT_MAX_CHAIN = 7;
/** No chain pgbb makes comes near this: a longer one is a hostile bucket. */
const MAX_WALK = 1000;
/** A chunk map this large would describe petabytes: refused before it is read. */
const MAX_CHUNK_MAP_BYTES = 1 << 30;

export interface ChainLink {
  id: string;
  record: BackupRecord;
}

/** The chain ending at `last`, its full backup first. */
export async function backupChain(repo: Repository, last: ChainLink): Promise<ChainLink[]> {
  const chain = [last];
  let at = last;
  while (at.record.kind === 'incremental') {
    const parent = at.record.parent!;
    if (chain.length > MAX_WALK) throw new PgbbError('not_a_backup', `${repo.where(last.id)} stands on a chain of more than ${MAX_WALK} backups: not one pgbb made`);
    if (parent >= at.id) throw new PgbbError('not_a_backup', `${repo.where(at.id)} names ${parent} as its parent, which is not older than it`);
    const record = await repo.record(parent);
    if (!record) throw new PgbbError('not_a_backup', `${repo.where(parent)}, the parent of ${at.id}, is missing or incomplete: the chain cannot be rebuilt`);
    if (record.systemIdentifier !== at.record.systemIdentifier) {
      throw new PgbbError('not_a_backup', `${repo.where(parent)}, the parent of ${at.id}, is of another system (${record.systemIdentifier}, not ${at.record.systemIdentifier})`);
    }
    at = { id: parent, record };
    chain.unshift(at);
  }
  return chain;
}

/** Incrementals in a chain (its length beyond the full backup). */
export function incrementalsIn(chain: ChainLink[]): number {
  return chain.length - 1;
}

/** The chunk map backup `link` keeps beside its record, checked against the record and decoded. */
export async function readChunkMap(repo: Repository, link: ChainLink, transform?: ObjectTransform): Promise<ChunkMap> {
  const where = repo.where(link.id, CHUNK_MAP_OBJECT);
  const entry = link.record.objects.find((o) => o.name === CHUNK_MAP_OBJECT);
  if (!entry) throw new PgbbError('not_a_backup', `${repo.where(link.id)} keeps no chunk map (written by an older pgbb): take a full backup to start a chain`);
  if (entry.size > MAX_CHUNK_MAP_BYTES) throw new PgbbError('chunk_map', `${where} is ${entry.size} bytes, more than the ${MAX_CHUNK_MAP_BYTES} a chunk map may be`);
  if (link.record.transform !== null && !transform) throw new UsageError(`${repo.where(link.id)} was written through "${link.record.transform}": give the matching key to read it`);
  let stream: Readable = checkedObject(repo, link.id, CHUNK_MAP_OBJECT, { size: entry.size, crc32c: entry.crc32c });
  if (transform) {
    const t = transform(CHUNK_MAP_OBJECT);
    const checked = stream;
    checked.on('error', (err) => t.destroy(err));
    stream = checked.pipe(t);
  }
  const pieces: Buffer[] = [];
  let total = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > MAX_CHUNK_MAP_BYTES) throw new PgbbError('chunk_map', `${where} is larger than ${MAX_CHUNK_MAP_BYTES} bytes`);
    pieces.push(piece);
  }
  return decodeChunkMap(Buffer.concat(pieces), where);
}
