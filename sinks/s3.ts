/**
 * S3 sink: a backup into s3://bucket/prefix/<id>/ — `base.tar.zst`,
 * `<oid>.tar.zst` per tablespace, `pg_wal.tar.zst`, `backup_manifest`, and
 * `chunkmap` (the chunk map an incremental backup is diffed against;
 * an incremental's archives hold only what changed: transforms/delta-pack.ts),
 * `backup.json` (the record: what, when, server, LSNs, sizes, CRC32Cs, parent)
 * written LAST, so that a backup without it is incomplete by construction.
 * `backup.started` is written first (so a killed backup that completed no
 * object is still seen, and expired) and removed after the record.
 *
 * Each archive is tarPack → [zstd] → [transform] → one streamed multipart
 * upload (src/s3/object-writer.ts): no temporary files, memory bounded by
 * part size × parts in flight. Part sizes grow with the server's size
 * estimate so that a 5 TB archive stays under 10,000 parts.
 * The optional per-object `transform` (an encryption, transforms/encrypt*)
 * is applied to every archive and to backup_manifest; the record stays
 * plain so that list and expire need no key.
 *
 * A failure (or destroy) aborts the upload in flight (AbortMultipartUpload)
 * and deletes every object this sink created; a committed backup is left.
 */
import { Writable } from 'node:stream';
import { once } from 'node:events';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from '../src/s3/sdk';
import type { BackupEvent, StartEvent } from '../src/events';
import { PgbbError, UsageError } from '../src/errors';
import { descriptorFromStart, encodeDescriptor } from '../src/codec/backup-descriptor';
import { compressSuffix, type CompressSpec } from '../src/codec/compression';
import type { BackupSink, WalPlace } from '../src/sink';
import { makeS3Client, s3Error } from '../src/s3/client';
import { Repository } from '../src/s3/repository';
import { encodeRecord, RECORD_NAME, STARTED_NAME, type StoredObject } from '../src/s3/backup-record';
import { newBackupId, type S3Location } from '../src/s3/s3-url';
import { DEFAULT_PART_SIZE, partSizeFor, S3ObjectWriter, type ObjectTransform, type ObjectWritten } from '../src/s3/object-writer';
import { CHUNK_MAP_OBJECT } from '../src/s3/chain';
import { PartBuffers } from '../src/s3/multipart-upload';
import { encodeChunkMapPieces, encodedChunkMapSize, type ChunkMap } from '../src/codec/chunkmap/chunk-map';
import { compressorFor, PackedOutput } from './packed-output';
import { destroyAndWait, endAndWait } from '../src/io/stream-end';

export interface S3SinkOptions {
  location: S3Location;
  /** Default: makeS3Client() (the standard AWS chain). */
  client?: S3Client;
  /** Default zstd (level 3). */
  compress?: CompressSpec;
  /** Per-object byte transform (encryption) before upload; `transformName` is recorded. */
  transform?: ObjectTransform;
  transformName?: string;
  storageClass?: string;
  sseKmsKeyId?: string;
  /** Smallest part size (default 8 MiB); grown for large archives. */
  partSize?: number;
  /** Parts in flight per object (default 3; peak RSS 120 MB for a 2 GiB upload with 8 MiB parts: bench/s3-upload.ts). */
  queueSize?: number;
  /** Default: the time ready() runs. */
  now?: () => Date;
  /** An incremental backup: the backup it stands on (recorded as its parent; the server must be of its system). */
  parent?: { id: string; systemIdentifier: string };
  /** The backup's chunk map, asked for once the stream has ended: stored beside the record as `chunkmap` (src/s3/chain.ts). */
  chunkMap?: () => ChunkMap | null;
}

type Callback = (err?: Error | null) => void;

export class S3Sink extends Writable implements BackupSink {
  private readonly repo: Repository;
  private readonly compress: CompressSpec;
  private readonly ownClient: boolean;
  readonly id: string;
  private readonly began: Date;
  private start: StartEvent | null = null;
  private descriptor: string | null = null;
  private archive: { out: PackedOutput; writer: S3ObjectWriter; name: string } | null = null;
  private manifest: { writer: S3ObjectWriter } | null = null;
  /** Archives whose bytes are all sent, in order; their CompleteMultipartUpload may still be on its way. */
  private finishing: { out: PackedOutput; done: Promise<StoredObject> }[] = [];
  private stored: StoredObject[] = [];
  /** Keys this sink created (or began): removed on failure. */
  private created: string[] = [];
  private endLsn = '';
  private timeline = 0;
  private bytes = 0;
  private sawEnd = false;
  private committed = false;
  /** commit() under way: a destroy waits for it to settle before it removes anything (nothing lands after the cleanup). */
  private committing: Promise<void> | null = null;
  private opened: Promise<void> | null = null;
  /** The archives are uploaded one after another: each takes the last one's part buffers. */
  private readonly buffers: PartBuffers;

  constructor(private readonly opts: S3SinkOptions) {
    // Refused before super(): Writable schedules _construct (which writes to the store) from its own constructor.
    if (!opts.location?.bucket) throw new UsageError('no S3 bucket given');
    if (opts.partSize !== undefined && !(opts.partSize >= 5 * 1024 * 1024)) throw new UsageError('S3 part size must be at least 5 MiB');
    const compress = opts.compress ?? { method: 'zstd', level: 3 };
    // A bad level fails here, before the server is contacted.
    compressorFor(compress)?.destroy();
    super({ objectMode: true, highWaterMark: 16 });
    this.compress = compress;
    this.buffers = new PartBuffers((opts.queueSize ?? 3) + 1);
    this.ownClient = !opts.client;
    this.repo = new Repository(opts.client ?? makeS3Client(), opts.location);
    this.began = (opts.now ?? (() => new Date()))();
    this.id = newBackupId(this.began, opts.parent ? 'I' : 'F');
  }

  /** s3://bucket/prefix/<id> */
  location(): string {
    return this.repo.where(this.id);
  }

  /** Refuses an id already in use; writes backup.started. */
  ready(): Promise<void> {
    this.opened ??= (async () => {
      if (!(await this.repo.isEmpty(this.id))) {
        throw new PgbbError('target_not_empty', `${this.repo.where(this.id)} already holds objects`);
      }
      await this.put(STARTED_NAME, Buffer.from(JSON.stringify({ id: this.id, started: this.began.toISOString(), pid: process.pid }) + '\n'));
    })();
    return this.opened;
  }

  override _construct(callback: Callback): void {
    this.ready().then(() => callback(), callback);
  }

  /** The source spools streamed WAL in a temporary directory (nothing local is ours). */
  walPlace(): WalPlace | null {
    return null;
  }

  private async put(name: string, body: Buffer): Promise<void> {
    const key = this.repo.key(this.id, name);
    this.created.push(key);
    await this.repo.client
      .send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: this.opts.location.bucket,
          Key: key,
          Body: body,
          ChecksumAlgorithm: 'CRC32C',
          ContentType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          ...(this.opts.storageClass ? { StorageClass: this.opts.storageClass as never } : {}),
          ...(this.opts.sseKmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: this.opts.sseKmsKeyId } : {}),
        }),
      )
      .catch((e) => Promise.reject(s3Error(e, 'upload', this.repo.where(this.id, name))));
  }

  private writer(name: string, expected: number | null): S3ObjectWriter {
    const key = this.repo.key(this.id, name);
    this.created.push(key);
    return new S3ObjectWriter({
      client: this.repo.client,
      bucket: this.opts.location.bucket,
      key,
      where: this.repo.where(this.id, name),
      partSize: partSizeFor(expected, this.opts.partSize ?? DEFAULT_PART_SIZE),
      queueSize: this.opts.queueSize,
      transform: this.opts.transform?.(name) ?? null,
      storageClass: this.opts.storageClass,
      sseKmsKeyId: this.opts.sseKmsKeyId,
      buffers: this.buffers,
    });
  }

  override _write(ev: BackupEvent, _enc: BufferEncoding, callback: Callback): void {
    switch (ev.type) {
      case 'data':
        this.bytes += ev.chunk.length;
        return this.archive!.out.write(ev, callback);
      case 'entry':
      case 'entry-end':
        return this.archive!.out.write(ev, callback);
      case 'start':
        if (this.opts.parent && ev.systemIdentifier !== this.opts.parent.systemIdentifier) {
          return callback(new PgbbError('not_a_backup', `the server's system identifier ${ev.systemIdentifier} is not that of ${this.repo.where(this.opts.parent.id)} (${this.opts.parent.systemIdentifier}): take a full backup`));
        }
        this.start = ev;
        this.timeline = ev.timeline;
        this.descriptor = encodeDescriptor(descriptorFromStart(ev));
        return callback();
      case 'archive': {
        const name = `${ev.name}.tar${compressSuffix(this.compress)}`;
        const ts = this.start?.tablespaces.find((t) => (ev.kind === 'base' ? t.oid === null : t.oid === ev.name));
        // WAL has no estimate: the data directory's size is a generous bound for what a backup's WAL can be.
        const base = this.start?.tablespaces.find((t) => t.oid === null);
        const writer = this.writer(name, ts?.size ?? base?.size ?? this.start?.totalBytes ?? null);
        const out = new PackedOutput(writer, this.compress, { layout: 'archive', comment: this.descriptor ?? undefined });
        this.archive = { out, writer, name };
        return callback();
      }
      case 'archive-end': {
        const a = this.archive!;
        this.archive = null;
        a.out.write(ev, (err) => {
          if (err) return callback(err);
          let answered = false;
          const done = a.out.finish().then(
            (): StoredObject => ({ name: a.name, ...a.writer.result! }),
            (e) => Promise.reject(e instanceof PgbbError ? e : s3Error(e, 'upload', this.repo.where(this.id, a.name))),
          );
          this.finishing.push({ out: a.out, done });
          // A Complete that fails after the next archive began fails the backup from here (during commit, commit reports it).
          done.catch((e) => answered && !this.committing && this.destroy(e));
          // The next archive goes up while the store assembles this one; the record waits for both (commit).
          Promise.race([a.writer.partsSent, done]).then(
            () => ((answered = true), callback()),
            (e) => ((answered = true), callback(e)),
          );
        });
        return;
      }
      case 'manifest': {
        const m = (this.manifest ??= { writer: this.writer('backup_manifest', null) });
        if (m.writer.write(ev.data)) return callback();
        m.writer.once('drain', () => callback());
        return;
      }
      case 'end':
        this.sawEnd = true;
        this.endLsn = ev.endLsn;
        this.timeline = ev.timeline || this.timeline;
        return callback();
      default:
        return callback();
    }
  }

  override _final(callback: Callback): void {
    this.committing = this.commit();
    this.committing.then(() => callback(), callback);
  }

  private async commit(): Promise<void> {
    if (!this.sawEnd || !this.start) throw new PgbbError('incomplete', 'backup stream ended before the backup was complete');
    const m = this.manifest;
    if (!m) throw new PgbbError('manifest', 'the backup has no backup_manifest: an S3 backup needs one (do not use --no-manifest)');
    const map = this.opts.chunkMap?.();
    if (!map && this.opts.chunkMap) throw new PgbbError('chunk_map', 'the backup ended without its chunk map');
    // The archives' Completes, the manifest's end and the chunk map go up together; the record waits for all.
    const [archives, manifest, chunkMap] = await settledAll([
      Promise.all(this.finishing.map((f) => f.done)),
      ended(m.writer, this.repo.where(this.id, 'backup_manifest')),
      map ? this.upload(CHUNK_MAP_OBJECT, encodedChunkMapSize(map), encodeChunkMapPieces(map)) : Promise.resolve(null),
    ] as const);
    this.stored.push(...archives, { name: 'backup_manifest', ...manifest });
    if (chunkMap) this.stored.push({ name: CHUNK_MAP_OBJECT, ...chunkMap });
    // Destroyed meanwhile (its cleanup waits for this): no record for objects that are being removed.
    if (this.destroyed) throw new PgbbError('aborted', `the backup to ${this.location()} was stopped before its record was written`);
    const s = this.start;
    await this.put(
      RECORD_NAME,
      encodeRecord({
        format: 'pgbb-s3-backup',
        version: 1,
        id: this.id,
        kind: this.opts.parent ? 'incremental' : 'full',
        parent: this.opts.parent?.id ?? null,
        label: s.label,
        startTime: this.began.toISOString(),
        endTime: new Date().toISOString(),
        serverVersion: s.serverVersion,
        systemIdentifier: s.systemIdentifier,
        timeline: this.timeline,
        startLsn: s.startLsn,
        endLsn: this.endLsn,
        // An incremental's data events are its changed chunks: it records the size of the backup it is.
        bytes: this.opts.parent && map ? mappedBytes(map) : this.bytes,
        compression: this.compress.method === 'zstd' ? 'zstd' : 'none',
        transform: this.opts.transform ? this.opts.transformName ?? 'custom' : null,
        objects: this.stored,
      }),
    );
    this.committed = true;
    // Best effort: a leftover marker beside a record means nothing.
    await this.repo.deleteKeys([this.repo.key(this.id, STARTED_NAME)], this.repo.where(this.id)).catch(() => {});
  }

  /** One object from pieces, streamed (the writer's backpressure paces the pieces). */
  private async upload(name: string, size: number, pieces: Iterable<Buffer>): Promise<ObjectWritten> {
    const w = this.writer(name, size);
    try {
      for (const piece of pieces) if (!w.write(piece)) await once(w, 'drain');
      return await ended(w, this.repo.where(this.id, name));
    } catch (e) {
      await destroyAndWait(w, e as Error);
      throw e instanceof PgbbError ? e : s3Error(e, 'upload', this.repo.where(this.id, name));
    }
  }

  override _destroy(err: Error | null, callback: Callback): void {
    const a = this.archive;
    const m = this.manifest;
    this.archive = null;
    this.manifest = null;
    // An archive whose Complete is on its way settles first (aborted if it has not): then its object is removed too.
    const writers = Promise.all([a?.out.abort(err ?? undefined), ...this.finishing.map((f) => f.out.abort(err ?? undefined)), m && !m.writer.destroyed ? destroyAndWait(m.writer, err) : undefined]);
    writers
      .then(async () => {
        // A commit under way settles first: its uploads are done (or failed), and it writes no record now.
        await this.committing?.catch(() => {});
        if (!this.committed && this.created.length) {
          await this.repo.deleteKeys([...new Set(this.created)], this.repo.where(this.id)).catch(() => {});
        }
      })
      .finally(() => {
        if (this.ownClient) this.repo.client.destroy();
        callback(err);
      });
  }
}

/** Promise.all that waits for every one to settle before it rejects: nothing is still uploading when the sink cleans up. */
async function settledAll<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const r = await Promise.allSettled(ps);
  const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  return r.map((x) => (x as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function mappedBytes(map: ChunkMap): number {
  let n = 0;
  for (const f of map.files.values()) n += f.size;
  return n;
}

/** Ends an object's writer: what was stored, or the error that ended it (an end without a result is one too). */
async function ended(w: S3ObjectWriter, where: string): Promise<ObjectWritten> {
  await endAndWait(w);
  if (!w.result) throw new PgbbError('s3', `could not upload ${where}: the upload ended without being complete`);
  return w.result;
}

export function s3Sink(opts: S3SinkOptions): S3Sink {
  return new S3Sink(opts);
}
