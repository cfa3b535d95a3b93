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
 * Failures: one that comes while the sink is readied or the source built
 * destroys the sink (and a source given as a stream), and compose rejects
 * once they have cleaned up; later ones are
 * runPipeline's (every stage cleaned up before the promise rejects), a
 * stage that throws synchronously inside its own _transform or _write included.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { UsageError } from '../errors';
import { isBackupSink, type WalPlace } from '../sink';
import { runPipeline } from './run-pipeline';
import { destroyAndWait } from '../io/stream-end';
import { guardThrows } from './throw-guard';

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
  // A stream runs once: reused, it would fail as a bare "Premature close" (or pass on nothing at all).
  if (sink.destroyed || sink.writableEnded) throw new UsageError(`compose: the sink (${sink.constructor.name}) was already used; a sink takes one backup, make a new one`);
  if (typeof c.source !== 'function') checkFresh(c.source);
  for (const o of c.observers ?? []) {
    if (o.destroyed || o.writableEnded) throw new UsageError(`compose: an observer (${o.constructor.name}) was already used; a stage runs in one pipeline, make a new one`);
  }
  let place: WalPlace | null = null;
  try {
    if (isBackupSink(sink)) {
      // A sink that cannot set up also emits 'error'; ready() reports it, the pipeline everything later.
      sink.on('error', () => {});
      await sink.ready();
      place = sink.walPlace();
    }
  } catch (err) {
    // A source given as a stream may already be connecting: it goes too.
    await Promise.all([discard(sink, err), typeof c.source === 'function' ? null : discard(c.source, err)]);
    throw err;
  }
  let source: Readable;
  try {
    source = typeof c.source === 'function' ? await c.source(place) : c.source;
    checkFresh(source);
  } catch (err) {
    await discard(sink, err);
    throw err;
  }
  // A stage that throws (synchronously) instead of calling back fails the pipeline, whoever pushed the event (throw-guard.ts).
  await runPipeline(source, (c.observers ?? []).map(guardThrows), guardThrows(sink), c.signal);
}

function checkFresh(source: Readable): void {
  if (source.destroyed || source.readableEnded || source.readableDidRead) {
    throw new UsageError(`compose: the source (${source.constructor.name}) was already used; a source gives one backup, make a new one`);
  }
}

/** Destroys a stream (a sink removes what it made, a source closes its connections) and waits until it has. */
function discard(stream: Writable | Readable, err: unknown): Promise<void> {
  // 'error' is the caller's to report, from the rejection.
  return destroyAndWait(stream, err as Error);
}
