/**
 * compose: the one way pgbb runs a backup's streams, for every command.
 *
 *   sink.ready() ─► source(sink.walPlace()) ─► observers … ─► sink
 *
 * The sink is readied first (src/sink.ts: the target checked and created, a
 * bad one refused untouched) so that nothing contacts the server for a
 * backup that could not be written; then the source is built, told where the
 * sink wants streamed WAL (a live source writes it there: straight into a
 * plain target's pg_wal/, or a spool inside a tar target). A plain Writable
 * that is not a BackupSink is neither readied nor asked.
 *
 * Failures: one that comes while the source is being built destroys the
 * sink, and compose rejects once it has cleaned up; later ones are
 * runPipeline's (every stage cleaned up before the promise rejects).
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { isBackupSink, type WalPlace } from '../sink';
import { runPipeline } from './run-pipeline';

export interface Composition {
  /** A stream, or a function that builds it once the sink is ready and has said where WAL goes. */
  source: Readable | ((walPlace: WalPlace | null) => Readable | Promise<Readable>);
  /** Transforms in order between source and sink (observers pass every event on). */
  observers?: Duplex[];
  sink: Writable;
  signal?: AbortSignal;
}

export async function compose(c: Composition): Promise<void> {
  const { sink } = c;
  let place: WalPlace | null = null;
  try {
    if (isBackupSink(sink)) {
      // A sink that cannot set up also emits 'error'; ready() reports it, the pipeline everything later.
      sink.on('error', () => {});
      await sink.ready();
      place = sink.walPlace();
    }
  } catch (err) {
    await discard(sink, err);
    throw err;
  }
  let source: Readable;
  try {
    source = typeof c.source === 'function' ? await c.source(place) : c.source;
  } catch (err) {
    await discard(sink, err);
    throw err;
  }
  await runPipeline(source, c.observers ?? [], sink, c.signal);
}

/** Destroys the sink (it removes what it made) and waits until it has. */
async function discard(sink: Writable, err: unknown): Promise<void> {
  if (!sink.destroyed) sink.destroy(err as Error);
  if (!sink.closed) await new Promise((resolve) => sink.once('close', resolve));
}
