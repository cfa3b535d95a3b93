/**
 * Composing a backup:
 *
 *   source ──► transform ──► … ──► sink
 *   (ReplicationSource)  (transforms/*)   (sinks/*)
 *
 * Plain `stream.pipeline`: backpressure runs end to end, and an error or an
 * abort anywhere destroys every stage, each of which releases what it holds
 * (connections, file descriptors) and removes what it half-wrote.
 */
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import type { Readable, Writable, Duplex } from 'node:stream';
import { InterruptedError } from '../errors';

export async function runPipeline(
  source: Readable,
  stages: Duplex[],
  sink: Writable,
  signal?: AbortSignal,
): Promise<void> {
  const streams = [source, ...stages, sink];
  try {
    await pipeline(streams, { signal });
  } catch (err) {
    // pipeline rejects as soon as one stage fails; wait until every stage has
    // finished cleaning up (closed connections, removed files) before we report.
    await Promise.all(streams.map((s) => (s.closed ? null : once(s, 'close').catch(() => null))));
    if ((err as Error).name === 'AbortError' || signal?.aborted) {
      // The reason the caller gave (the CLI's names the signal), else a plain InterruptedError.
      const reason: unknown = signal?.reason;
      throw reason instanceof InterruptedError ? reason : new InterruptedError(reason instanceof Error ? reason.message : 'interrupted');
    }
    throw err;
  }
}
