/**
 * The parallel live source (src/sources/live-source.ts contract): a leader
 * session holds a non-exclusive backup open, N worker sessions fetch the
 * files (parallel-fetch.ts); the member stream comes out as from BASE_BACKUP.
 *
 *   leader:  settings, privileges, room for N ─► beforeBackup ─► N workers
 *            ─► pg_backup_start ─► started ─► list (parallel-listing.ts)
 *   out:     start, per tablespace then base: archive, directories, links,
 *            files largest first (global/pg_control last in base) ─►
 *            pg_backup_stop ─► backup_label (from it) ─► ended ─► end
 *
 * Files that vanish before their first byte is read are skipped, as
 * BASE_BACKUP skips them; one that shrinks is padded with zeros to its listed
 * size (WAL replay restores it). `reread(path, block)` reads one page again on
 * the leader, for client-side page checksum verification.
 *
 * With `localDir` (the local source) the same leader protocol runs, but N
 * readers take the files from disk (local-fetch.ts): no worker sessions.
 *
 * Failure (a worker's connection killed, a server error, destroy): the other
 * workers stop and are disconnected, and the leader calls pg_backup_stop
 * before it disconnects, so that no backup is left running on the server.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ClientConfig } from 'pg';
import { PgbbError, ProtocolError } from '../errors';
import type { BackupEvent, Tablespace } from '../events';
import type { ServerSettings } from '../net/server-settings';
import { currentTimeline, readSqlSettings } from '../net/sql-server-settings';
import { SqlSession, sqlLiteral } from '../net/sql-session';
import type { LiveSourceHooks } from './live-source';
import { listCluster, type ListedArchive, type ListedFile } from './parallel-listing';
import { checkConnectionRoom, checkPrivileges } from './parallel-checks';
import { CHUNK, OrderedFetch, pieceByPiece, planPieces, type Piece, type PieceData, type RunFetch } from './parallel-fetch';
import { fetchRunOverSql } from './sql-run-fetch';
import { checkLocalDataDir, readPiece, readRange } from './local-fetch';
import { remoteHashFetch } from './remote-hash-fetch';
import { hasRenamedBackupFunctions } from '../codec/server-version';

export interface ParallelReaderOptions {
  /** A plain (non-replication) client config. */
  config: ClientConfig;
  jobs: number;
  label: string;
  checkpoint: 'fast' | 'spread';
  timeoutMs: number;
  hooks: LiveSourceHooks;
  /** Local source: read the files from this directory (the server's data directory, checked) instead of over SQL. */
  localDir?: string;
  /** refresh -j: the backup being refreshed; only pieces whose bytes differ from its are sent (remote-hash-fetch.ts). */
  remoteHashDir?: string;
}

/** Who fetches pieces: worker sessions, or readers of the local data directory; `run` pieces at a time, `window` ahead. */
interface Fetcher {
  workers: unknown[];
  fetch: RunFetch<unknown>;
  run: number;
  window: number;
}

/**
 * Pieces (≤ CHUNK each) fetched ahead of the consumer, all workers together:
 * the memory bound of the transfer. Enough that each SQL worker streams runs
 * of several pieces (a round trip per run) with one more run per worker queued.
 */
const WINDOW_PIECES = 32;
const MAX_RUN = 16;

const STOP_TIMEOUT_MS = 10_000;
const PG_CONTROL = 'global/pg_control';

export class ParallelReader extends Readable {
  private leader: SqlSession | null = null;
  private workers: SqlSession[] = [];
  private fetch: OrderedFetch<unknown> | null = null;
  private fetcher: Fetcher | null = null;
  /** COPY bytes of workers already closed. */
  private closedBytes = 0;
  private backupRunning = false;
  private settings: ServerSettings | null = null;
  private room: (() => void) | null = null;
  private readonly opening = new AbortController();
  private started = false;
  private readonly mode = { dir: 0o700, file: 0o600 };

  constructor(private readonly o: ParallelReaderOptions) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.run().catch((err) => this.destroy(err));
    }
    const r = this.room;
    this.room = null;
    r?.();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.opening.abort(err ?? new PgbbError('aborted', 'backup source destroyed'));
    this.fetch?.stop();
    for (const w of this.workers) w.destroy();
    this.room?.();
    this.stopOnFailure().then(
      () => callback(err),
      () => callback(err),
    );
  }

  /** File data received over the network so far (COPY output of the leader and the workers). */
  get networkBytes(): number {
    return this.workers.reduce((n, w) => n + w.copyBytes, this.closedBytes + (this.leader?.copyBytes ?? 0));
  }

  /** One page again, on the leader (null: the file is gone or shorter now). */
  async reread(path: string, block: number): Promise<Buffer | null> {
    const bs = this.settings?.blockSize ?? 8192;
    if (!this.leader) return null;
    const page = this.o.localDir
      ? await readRange(join(this.o.localDir, path), block * bs, bs)
      : ((await this.leader.copyRows(`SELECT pg_read_binary_file(${sqlLiteral(path)}, ${block * bs}, ${bs}, true)`))[0]?.[0] ?? null);
    return page && page.length === bs ? page : null;
  }

  private async stopOnFailure(): Promise<void> {
    const leader = this.leader;
    this.leader = null;
    if (!leader) return;
    this.closedBytes += leader.copyBytes;
    if (this.backupRunning) {
      // The server would abort the backup when the session ends; stopping it says so at once.
      const stop = leader.rows(this.stopSql()).catch(() => {});
      await Promise.race([stop, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS).unref())]);
    }
    await leader.close().catch(() => {});
  }

  private stopSql(): string {
    return hasRenamedBackupFunctions(this.settings?.serverVersion ?? 150000)
      ? 'SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)'
      : 'SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)';
  }

  private async connect(): Promise<SqlSession> {
    return SqlSession.connect(this.o.config, { timeoutMs: this.o.timeoutMs, signal: this.opening.signal });
  }

  private async connectWorkers(): Promise<Fetcher> {
    const made = await Promise.allSettled(Array.from({ length: this.o.jobs }, () => this.connect()));
    this.workers = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = made.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const n = this.workers.length;
    if (this.o.remoteHashDir) return { workers: this.workers, fetch: pieceByPiece(remoteHashFetch(this.o.remoteHashDir)) as RunFetch<unknown>, run: 1, window: 2 * n };
    const window = Math.max(WINDOW_PIECES, 2 * n);
    return { workers: this.workers, fetch: fetchRunOverSql as RunFetch<unknown>, run: Math.max(1, Math.min(MAX_RUN, Math.floor(window / (n + 1)))), window };
  }

  private async run(): Promise<void> {
    const o = this.o;
    const leader = (this.leader = await this.connect());
    const settings = (this.settings = await readSqlSettings(leader));
    if (settings.groupReadable) Object.assign(this.mode, { dir: 0o750, file: 0o640 });
    await checkPrivileges(leader, settings.serverVersion);
    if (o.localDir) await checkLocalDataDir(leader, o.localDir);
    else await checkConnectionRoom(leader, o.jobs);
    await o.hooks.beforeBackup(settings);
    if (this.destroyed) return;
    this.fetcher = o.localDir ? localFetcher(o.localDir, o.jobs) : await this.connectWorkers();
    if (this.destroyed) return;

    const v15 = hasRenamedBackupFunctions(settings.serverVersion);
    const fast = o.checkpoint === 'fast' ? 'true' : 'false';
    leader.allowSilence(true);
    this.backupRunning = true;
    const [startRow] = await leader.rows(v15 ? `SELECT pg_backup_start(${sqlLiteral(o.label)}, ${fast})::text` : `SELECT pg_start_backup(${sqlLiteral(o.label)}, ${fast}, false)::text`);
    leader.allowSilence(false);
    const startLsn = startRow?.[0];
    if (!startLsn) throw new ProtocolError('pg_backup_start returned no position');
    const timeline = await currentTimeline(leader);
    o.hooks.started(startLsn, timeline);

    const archives = await listCluster(leader, settings.serverVersion);
    const total = archives.reduce((n, a) => n + a.files.reduce((m, f) => m + f.size, 0), 0);
    const tablespaces: Tablespace[] = archives.map((a) => ({ oid: a.oid, location: a.location, size: a.files.reduce((m, f) => m + f.size, 0) }));
    await this.send({
      type: 'start',
      serverVersion: settings.serverVersion,
      systemIdentifier: settings.systemIdentifier,
      timeline,
      startLsn,
      tablespaces,
      walSegmentSize: settings.walSegmentSize,
      blockSize: settings.blockSize,
      segmentBlocks: settings.segmentBlocks,
      dataChecksums: settings.dataChecksums,
      label: o.label,
      totalBytes: total,
      ...(settings.groupReadable ? { groupReadable: true } : {}),
    });
    for (const a of archives) await this.sendArchive(a);
    if (this.destroyed) return;
    // Politely (Terminate), so the server logs no lost connections; the leader goes in _destroy.
    const workers = this.workers;
    this.workers = [];
    this.closedBytes += workers.reduce((n, w) => n + w.copyBytes, 0);
    await Promise.all(workers.map((w) => w.close().catch(() => {})));
    this.push(null);
  }

  private async sendArchive(a: ListedArchive): Promise<void> {
    const base = a.oid === null;
    await this.send({ type: 'archive', kind: base ? 'base' : 'tablespace', name: base ? 'base' : a.oid!, location: a.location });
    for (const d of [...a.dirs].sort((x, y) => (x.path < y.path ? -1 : 1))) {
      await this.send({ type: 'entry', path: d.path, kind: 'directory', size: 0, mode: this.mode.dir, mtime: d.mtime });
      await this.send({ type: 'entry-end' });
    }
    for (const l of a.links) {
      await this.send({ type: 'entry', path: l.path, kind: 'symlink', size: 0, mode: 0o777, mtime: new Date(), linkTarget: l.target });
      await this.send({ type: 'entry-end' });
    }
    // pg_control last, as BASE_BACKUP sends it.
    const control = base ? a.files.find((f) => f.path === PG_CONTROL) : undefined;
    const { workers, fetch, run, window } = this.fetcher!;
    this.fetch = new OrderedFetch(planPieces(a.files.filter((f) => f !== control)), workers, window, fetch, run);
    for (let next = await this.fetch.next(); next; next = await this.fetch.next()) await this.sendPiece(next.piece, next.data);
    this.fetch = null;
    if (base) {
      if (control) {
        const piece: Piece = { kind: 'batch', files: [control] };
        let data: PieceData = null;
        await fetch(workers[0], [piece], (_k, d) => (data = d));
        await this.sendPiece(piece, data);
      }
      await this.stopBackup();
    }
    await this.send({ type: 'archive-end' });
  }

  private skipping: ListedFile | null = null;

  private async sendPiece(p: Piece, data: PieceData): Promise<void> {
    if (p.kind === 'batch') {
      const each = data as (Buffer | null)[];
      for (let i = 0; i < p.files.length; i++) if (each[i] !== null) await this.sendFile(p.files[i], each[i]!);
      return;
    }
    const bytes = data as Buffer | null;
    if (p.first) {
      this.skipping = bytes === null ? p.file : null;
      if (bytes === null) return;
      await this.send(this.entryOf(p.file));
    }
    if (this.skipping === p.file) return;
    await this.send({ type: 'data', offset: p.offset, chunk: padded(bytes, p.length) });
    if (p.last) await this.send({ type: 'entry-end' });
  }

  private async sendFile(f: ListedFile, bytes: Buffer): Promise<void> {
    await this.send(this.entryOf(f));
    for (let off = 0; off < f.size; off += CHUNK) {
      await this.send({ type: 'data', offset: off, chunk: padded(bytes.subarray(off, off + CHUNK), Math.min(CHUNK, f.size - off)) });
    }
    await this.send({ type: 'entry-end' });
  }

  private entryOf(f: ListedFile): BackupEvent {
    return { type: 'entry', path: f.path, kind: 'file', size: f.size, mode: this.mode.file, mtime: f.mtime };
  }

  private async stopBackup(): Promise<void> {
    const leader = this.leader!;
    const [row] = await leader.rows(this.stopSql());
    this.backupRunning = false;
    const [lsn, label] = row ?? [];
    if (!lsn || !label) throw new ProtocolError('pg_backup_stop returned no end position or backup label');
    const tli = await currentTimeline(leader);
    const text = Buffer.from(label, 'utf8');
    await this.sendFile({ path: 'backup_label', serverPath: '', size: text.length, mtime: new Date() }, text);
    this.o.hooks.ended(lsn, tli);
    this.endEvent = { type: 'end', endLsn: lsn, timeline: tli };
  }

  private endEvent: BackupEvent | null = null;

  override push(chunk: BackupEvent | null): boolean {
    // `end` goes right before the stream's end, after base's archive-end.
    if (chunk === null && this.endEvent) {
      super.push(this.endEvent);
      this.endEvent = null;
    }
    return super.push(chunk);
  }

  /** Pushes and waits while the consumer has enough: backpressure reaches the workers through the fetch window. */
  private async send(ev: BackupEvent): Promise<void> {
    if (this.destroyed) throw new PgbbError('aborted', 'backup source destroyed');
    if (!this.push(ev)) await new Promise<void>((r) => (this.room = r));
  }
}

function localFetcher(dir: string, jobs: number): Fetcher {
  return { workers: Array.from({ length: jobs }, () => dir), fetch: pieceByPiece((_w, p) => readPiece(dir, p)), run: 1, window: 2 * jobs };
}

function padded(b: Buffer | null, length: number): Buffer {
  if (b && b.length === length) return b;
  const out = Buffer.alloc(length);
  b?.copy(out);
  return out;
}
