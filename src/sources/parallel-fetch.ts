/**
 * The parallel source's transfer: files cut into pieces — chunks of large
 * files, batches of small ones — fetched by N worker sessions with
 * `pg_read_binary_file` in binary COPY form, and handed back in piece order.
 *
 *   planPieces(files)          largest first; a file ≥ CHUNK is one piece per
 *                              CHUNK, smaller ones share batches of ≤ CHUNK bytes
 *   new OrderedFetch(…).next() the next piece's bytes, in order, whoever
 *                              fetches them (SQL sessions: sql-run-fetch.ts,
 *                              disk readers: local-fetch.ts)
 *
 * Runs: a worker takes up to `run` consecutive pieces at a time and hands
 * each one back as it arrives (over SQL, one query streams the whole run),
 * so a round trip to the server is paid per run, not per piece.
 * Memory: workers run at most `window` pieces ahead of the consumer, so at
 * most window × CHUNK bytes wait; a consumer that stops pulling stops them.
 * Errors: the first worker failure is what next() rejects with; the other
 * workers take no new piece after it (the caller destroys their sessions).
 */
import type { ListedFile } from './parallel-listing';
import { sqlLiteral, type SqlSession } from '../net/sql-session';

export const CHUNK = 1024 * 1024;
const MAX_BATCH_FILES = 256;

export type Piece =
  | { kind: 'chunk'; file: ListedFile; offset: number; length: number; first: boolean; last: boolean }
  | { kind: 'batch'; files: ListedFile[] };

/** A chunk's bytes (null: the file is gone), or a batch's files' (each null when gone). */
export type PieceData = Buffer | null | (Buffer | null)[];

export function planPieces(files: readonly ListedFile[], chunk = CHUNK): Piece[] {
  const sorted = [...files].sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  const pieces: Piece[] = [];
  let batch: ListedFile[] = [];
  let batchBytes = 0;
  const flush = () => {
    if (batch.length > 0) pieces.push({ kind: 'batch', files: batch });
    batch = [];
    batchBytes = 0;
  };
  for (const f of sorted) {
    if (f.size >= chunk) {
      for (let offset = 0; offset < f.size; offset += chunk) {
        pieces.push({ kind: 'chunk', file: f, offset, length: Math.min(chunk, f.size - offset), first: offset === 0, last: offset + chunk >= f.size });
      }
      continue;
    }
    if (batchBytes + f.size > chunk || batch.length >= MAX_BATCH_FILES) flush();
    batch.push(f);
    batchBytes += f.size;
  }
  flush();
  return pieces;
}

/** Fetches `run` (consecutive pieces) and calls `deliver(k, data)` for each of them, in any order, before resolving. */
export type RunFetch<W> = (worker: W, run: readonly Piece[], deliver: (k: number, data: PieceData) => void) => Promise<void>;

/** A RunFetch from a fetcher of single pieces: the run's pieces one after another. */
export function pieceByPiece<W>(fetch: (w: W, p: Piece) => Promise<PieceData>): RunFetch<W> {
  return async (w, run, deliver) => {
    for (let k = 0; k < run.length; k++) deliver(k, await fetch(w, run[k]));
  };
}

export async function fetchPiece(s: SqlSession, p: Piece): Promise<PieceData> {
  if (p.kind === 'chunk') {
    const rows = await s.copyRows(`SELECT pg_read_binary_file(${sqlLiteral(p.file.serverPath)}, ${p.offset}, ${p.length}, true)`);
    return rows[0]?.[0] ?? null;
  }
  const paths = p.files.map((f) => sqlLiteral(f.serverPath)).join(',');
  const sizes = p.files.map((f) => f.size).join(',');
  const rows = await s.copyRows(
    `SELECT pg_read_binary_file(p, 0, l, true) FROM unnest(ARRAY[${paths}]::text[], ARRAY[${sizes}]::bigint[]) WITH ORDINALITY AS x(p, l, i) ORDER BY i`,
  );
  return p.files.map((_, i) => rows[i]?.[0] ?? null);
}

export class OrderedFetch<W = SqlSession> {
  private taken = 0;
  private delivered = 0;
  private readonly results = new Map<number, PieceData>();
  private failure: Error | null = null;
  private stopped = false;
  private wakeConsumer: (() => void) | null = null;
  private readonly wakeWorkers: (() => void)[] = [];

  constructor(
    private readonly pieces: readonly Piece[],
    workers: readonly W[],
    private readonly window: number,
    private readonly fetch: RunFetch<W>,
    private readonly run = 1,
  ) {
    for (const w of workers) void this.work(w);
  }

  /** The next piece and its data, in plan order; null after the last. */
  async next(): Promise<{ piece: Piece; data: PieceData } | null> {
    if (this.delivered >= this.pieces.length) return null;
    while (!this.results.has(this.delivered)) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
    const data = this.results.get(this.delivered)!;
    this.results.delete(this.delivered);
    const piece = this.pieces[this.delivered++];
    for (const w of this.wakeWorkers.splice(0)) w();
    return { piece, data };
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.wakeWorkers.splice(0)) w();
  }

  private async work(s: W): Promise<void> {
    try {
      while (!this.stopped && !this.failure && this.taken < this.pieces.length) {
        const room = this.delivered + this.window - this.taken;
        if (room <= 0) {
          await new Promise<void>((r) => this.wakeWorkers.push(r));
          continue;
        }
        const first = this.taken;
        const n = Math.min(this.run, room, this.pieces.length - first);
        this.taken += n;
        let got = 0;
        await this.fetch(s, this.pieces.slice(first, first + n), (k, data) => {
          if (k < 0 || k >= n || this.results.has(first + k)) throw new Error(`piece ${k} of a run of ${n} delivered twice or out of range`);
          got++;
          this.results.set(first + k, data);
          this.wake();
        });
        if (got !== n) throw new Error(`a run of ${n} pieces ended after ${got}`);
      }
    } catch (err) {
      this.failure ??= err as Error;
      this.stop();
      this.wake();
    }
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = null;
    w?.();
  }
}
