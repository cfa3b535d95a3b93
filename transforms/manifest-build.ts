/**
 * manifest-build: writes the backup_manifest PostgreSQL would have sent, for
 * sources that bring none (parallel, local, refreshed backups) or to replace
 * the server's (observer: every other event passes through unchanged).
 *
 * In:  member events. Listed files (see manifestPathOf: regular files, with
 *      tablespace members under `pg_tblspc/<oid>/`, not WAL segments nor a
 *      streamed WAL archive) get size, Last-Modified (member mtime) and a
 *      checksum computed from their `data` events, which must come in order.
 *      `start` gives the system identifier, start LSN/timeline and server
 *      version (manifest version 1 before 17, 2 from 17); `end` the end LSN
 *      and timeline. A backup spanning timelines needs the end timeline's
 *      `*.history` file in the stream (the server sends them with WAL).
 * Out: the same events, plus a `manifest` event right before `end`. An
 *      upstream `manifest` event is dropped with `replace: true`; otherwise it
 *      passes and none is built.
 * Result (after end): { files, bytes, built, manifest } — files listed,
 *      bytes digested, whether this stage built the manifest, and its bytes.
 * Errors: ManifestError (no start event, data out of order, a file seen
 *      twice, a missing timeline history).
 */
import { Transform } from 'node:stream';
import type { BackupEvent, EndEvent, ManifestEvent, StartEvent } from '../src/events';
import { ManifestError, UsageError } from '../src/errors';
import { buildManifest, CHECKSUM_ALGORITHMS, walRangesFor, type ChecksumAlgorithm } from '../src/codec/manifest';
import { FileTracker } from '../src/manifest/file-tracker';

export interface ManifestBuildOptions {
  /** Drop the upstream manifest and emit ours (default false: ours only when upstream sent none). */
  replace?: boolean;
  /** Per-file checksum (default CRC32C, as PostgreSQL). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Manifest version; default from the server version (1 before 17, 2 from 17). */
  version?: 1 | 2;
  /** Encoded-Path for every file (MANIFEST 'force-encode'). */
  forceEncode?: boolean;
}

export interface ManifestBuildResult {
  files: number;
  bytes: number;
  built: boolean;
  manifest: Buffer | null;
}

const HISTORY = /^(?:pg_wal\/)?([0-9A-F]{8})\.history$/;
/** History files are a few lines each; anything bigger is not one we need. */
const MAX_HISTORY_BYTES = 1 << 20;

export class ManifestBuild extends Transform {
  private readonly opts: ManifestBuildOptions;
  private readonly tracker: FileTracker;
  private start: StartEvent | null = null;
  private upstreamManifest = false;
  /** Timeline history files by timeline, for backups that span timelines. */
  private readonly histories = new Map<number, string>();
  private history: { tli: number; chunks: Buffer[]; size: number } | null = null;
  private archiveKind = 'base';
  private done: ManifestBuildResult | null = null;

  constructor(opts: ManifestBuildOptions = {}) {
    super({ objectMode: true, highWaterMark: 16 });
    const alg = opts.checksumAlgorithm ?? 'CRC32C';
    if (!CHECKSUM_ALGORITHMS.includes(alg)) throw new UsageError(`invalid manifest checksum algorithm "${alg}"`);
    if (opts.version !== undefined && opts.version !== 1 && opts.version !== 2) throw new UsageError(`invalid manifest version ${opts.version}`);
    this.opts = opts;
    this.tracker = new FileTracker(alg);
  }

  get result(): ManifestBuildResult | null {
    return this.done;
  }

  override _transform(ev: BackupEvent, _enc: BufferEncoding, cb: (err?: Error | null, ev?: BackupEvent) => void): void {
    try {
      switch (ev.type) {
        case 'data':
          this.tracker.data(ev.offset, ev.chunk);
          if (this.history) this.captureHistory(ev.chunk);
          break;
        case 'entry': {
          this.endHistory();
          this.tracker.entry(ev.path, ev.kind, ev.mtime);
          const h = ev.kind === 'file' && this.archiveKind !== 'tablespace' ? HISTORY.exec(ev.path) : null;
          if (h) this.history = { tli: parseInt(h[1], 16), chunks: [], size: 0 };
          break;
        }
        case 'entry-end':
        case 'archive-end':
          this.endHistory();
          this.tracker.entryEnd();
          break;
        case 'archive':
          this.archiveKind = ev.kind;
          this.tracker.archive(ev.kind, ev.name);
          break;
        case 'start':
          this.start = ev;
          break;
        case 'manifest':
          this.upstreamManifest = true;
          if (this.opts.replace) return cb();
          break;
        case 'end':
          this.finish(ev);
          break;
      }
    } catch (err) {
      return cb(err as Error);
    }
    cb(null, ev);
  }

  private captureHistory(chunk: Buffer): void {
    const h = this.history!;
    h.size += chunk.length;
    if (h.size > MAX_HISTORY_BYTES) this.history = null;
    else h.chunks.push(Buffer.from(chunk));
  }

  private endHistory(): void {
    if (this.history) this.histories.set(this.history.tli, Buffer.concat(this.history.chunks).toString('utf8'));
    this.history = null;
  }

  private finish(end: EndEvent): void {
    const t = this.tracker;
    t.entryEnd();
    this.endHistory();
    if (this.upstreamManifest && !this.opts.replace) {
      this.done = { files: t.files.size, bytes: t.bytes, built: false, manifest: null };
      return;
    }
    const s = this.start;
    if (!s) throw new ManifestError('cannot build backup_manifest: the stream had no start event');
    if (t.duplicates.length) throw new ManifestError(`cannot build backup_manifest: "${t.duplicates[0]}" appears more than once in the backup`);
    const algorithm = t.algorithm;
    const manifest = buildManifest({
      version: this.opts.version ?? (s.serverVersion >= 170000 ? 2 : 1),
      systemIdentifier: s.systemIdentifier,
      forceEncode: this.opts.forceEncode,
      walRanges: walRangesFor(s.startLsn, s.timeline, end.endLsn, end.timeline, this.histories.get(end.timeline)),
      files: [...t.files.values()].map((f) => ({
        path: f.path,
        size: f.size,
        lastModified: f.mtime,
        checksumAlgorithm: algorithm,
        checksum: f.checksum,
      })),
    });
    const ev: ManifestEvent = { type: 'manifest', data: manifest };
    this.push(ev);
    this.done = { files: t.files.size, bytes: t.bytes, built: true, manifest };
  }
}

export function manifestBuild(opts: ManifestBuildOptions = {}): ManifestBuild {
  return new ManifestBuild(opts);
}
