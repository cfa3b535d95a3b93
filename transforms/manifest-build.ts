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
 * Out: the same events, plus the manifest right before `end`, as `manifest`
 *      events of at most 256 KiB each. An
 *      upstream `manifest` event is dropped with `replace: true`; otherwise it
 *      passes and none is built.
 * Result (after end): { files, bytes, built, manifest } — files listed,
 *      bytes digested, whether this stage built the manifest, and its bytes
 *      (joined when read).
 * Memory: the manifest text as it grows (its lines are written as each
 *      file ends, src/codec/manifest-writer.ts) and each listed path once,
 *      compactly, to catch a file seen twice (src/codec/file-table.ts).
 * Errors: ManifestError (no start event, data out of order, a file seen
 *      twice, a missing timeline history).
 */
import type { ArchiveEvent, DataEvent, EndEvent, EntryEvent, ManifestEvent, StartEvent } from '../src/events';
import { ManifestError, UsageError } from '../src/errors';
import { CHECKSUM_ALGORITHMS, ManifestWriter, walRangesFor, type ChecksumAlgorithm } from '../src/codec/manifest';
import { FileTracker } from '../src/manifest/file-tracker';
import { FileTable } from '../src/codec/file-table';
import { HOLD, Observer, type Verdict } from './observer';
import { manifestVersionFor } from '../src/codec/server-version';

export interface ManifestBuildOptions {
  /** Drop the upstream manifest and emit ours (default false: ours only when upstream sent none). */
  replace?: boolean;
  /** Per-file checksum (default CRC32C, as PostgreSQL). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Manifest version; default from the server version (1 before 17, 2 from 17). */
  version?: 1 | 2;
  /** Encoded-Path for every file (MANIFEST 'force-encode'). */
  forceEncode?: boolean;
  /** A later stage (the chunk map) wants every data event's CRC32C: leave it on the events (src/codec/data-crc.ts), so that each byte is checksummed once. */
  shareCrc?: boolean;
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

export class ManifestBuild extends Observer {
  private readonly opts: ManifestBuildOptions;
  private readonly tracker: FileTracker;
  /** Started at `start`, which names the version and system. */
  private writer: ManifestWriter | null = null;
  private readonly paths = new FileTable(0);
  private firstDuplicate: string | null = null;
  private upstreamManifest = false;
  /** Timeline history files by timeline, for backups that span timelines. */
  private readonly histories = new Map<number, string>();
  private history: { tli: number; chunks: Buffer[]; size: number } | null = null;
  private done: ManifestBuildResult | null = null;

  constructor(opts: ManifestBuildOptions = {}) {
    super();
    const alg = opts.checksumAlgorithm ?? 'CRC32C';
    if (!CHECKSUM_ALGORITHMS.includes(alg)) throw new UsageError(`invalid manifest checksum algorithm "${alg}"`);
    if (opts.version !== undefined && opts.version !== 1 && opts.version !== 2) throw new UsageError(`invalid manifest version ${opts.version}`);
    this.opts = opts;
    this.tracker = new FileTracker(alg, opts.shareCrc);
  }

  get result(): ManifestBuildResult | null {
    return this.done;
  }

  protected override onStart(s: StartEvent): void {
    this.writer = new ManifestWriter({
      version: this.opts.version ?? manifestVersionFor(s.serverVersion),
      systemIdentifier: s.systemIdentifier,
      forceEncode: this.opts.forceEncode,
    });
  }

  protected override onArchive(ev: ArchiveEvent): void {
    this.tracker.archive(ev.kind, ev.name);
  }

  protected override onEntry(ev: EntryEvent): void {
    this.tracker.entry(ev.path, ev.kind, ev.mtime);
    const h = ev.kind === 'file' && this.archive?.kind !== 'tablespace' ? HISTORY.exec(ev.path) : null;
    if (h) this.history = { tli: parseInt(h[1], 16), chunks: [], size: 0 };
  }

  protected override onData(ev: DataEvent): void {
    this.tracker.data(ev);
    if (this.history) this.captureHistory(ev.chunk);
  }

  protected override onEntryEnd(): void {
    this.endHistory();
    const f = this.tracker.entryEnd();
    if (!f) return;
    if (!this.paths.add(f.path).added) this.firstDuplicate ??= f.path;
    this.writer?.file({ path: f.path, size: f.size, lastModified: f.mtime, checksumAlgorithm: this.tracker.algorithm, checksum: f.checksum });
  }

  protected override onManifest(): Verdict {
    this.upstreamManifest = true;
    if (this.opts.replace) return HOLD; // dropped
  }

  protected override onEnd(end: EndEvent): void {
    const t = this.tracker;
    const files = this.paths.count;
    if (this.upstreamManifest && !this.opts.replace) {
      this.done = { files, bytes: t.bytes, built: false, manifest: null };
      return;
    }
    const s = this.startEvent;
    if (!s || !this.writer) throw new ManifestError('cannot build backup_manifest: the stream had no start event');
    if (this.firstDuplicate !== null) throw new ManifestError(`cannot build backup_manifest: "${this.firstDuplicate}" appears more than once in the backup`);
    const pieces = this.writer.finish(walRangesFor(s.startLsn, s.timeline, end.endLsn, end.timeline, this.histories.get(end.timeline)));
    for (const data of pieces) this.push({ type: 'manifest', data } satisfies ManifestEvent);
    let whole: Buffer | null = null;
    this.done = {
      files,
      bytes: t.bytes,
      built: true,
      get manifest() {
        return (whole ??= Buffer.concat(pieces));
      },
    };
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
}

export function manifestBuild(opts: ManifestBuildOptions = {}): ManifestBuild {
  return new ManifestBuild(opts);
}
