/**
 * Runs one fuzz target's cases in a worker thread, so that a case stuck in a
 * synchronous loop can be stopped from outside (./run-fuzz.ts terminates the
 * worker when the case index in the shared progress array stops moving).
 *
 * workerData: { file, name, seed, iterations, only, progress }
 * Posts: { type: 'violation', … } per bad case, then { type: 'done', … }.
 * Per case: progress[0] = case index, progress[1] = 1 while it runs; memory
 * is measured around it (process.memoryUsage) against the target's limits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { PgbbError } from '../../../src/errors';
import { caseRng } from './random';
import { MiB, type FuzzTarget } from './target';

interface Data {
  file: string;
  name: string;
  seed: number;
  iterations: number;
  only: number;
  progress: SharedArrayBuffer;
}

const data = workerData as Data;
const progress = new Int32Array(data.progress);
let current = -1;

function report(kind: string, err: unknown, extra = ''): void {
  const e = err as Error;
  parentPort!.postMessage({
    type: 'violation',
    case: current,
    kind,
    name: e?.constructor?.name ?? typeof err,
    message: (e?.message ?? String(err)).slice(0, 500) + extra,
    stack: String(e?.stack ?? '')
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .slice(0, 5)
      .join('\n'),
  });
}

// An error thrown outside the case's own promise (a stream emitting 'error'
// with no listener, a callback throwing later) would crash a real run.
process.on('uncaughtException', (err) => report('uncaught exception', err));
process.on('unhandledRejection', (err) => report('unhandled rejection', err));

async function main(): Promise<void> {
  const mod = require(join(__dirname, '..', 'targets', `${data.file}.js`)) as Record<string, FuzzTarget>;
  const target = mod[data.name];
  if (!target) throw new Error(`no fuzz target ${data.name} in ${data.file}`);
  let ctx: unknown;
  try {
    ctx = await target.setup?.();
  } catch (err) {
    await target.teardown?.(undefined);
    throw err;
  }
  const limits = { arrayBuffers: 64 * MiB, heap: 256 * MiB, rss: 512 * MiB, ...target.limits };
  let accepted = 0;
  let rejected = 0;
  const codes = new Map<string, number>();
  const started = Date.now();
  for (let i = 0; i < data.iterations; i++) {
    if (data.only >= 0 && i !== data.only) continue;
    current = i;
    Atomics.store(progress, 0, i);
    Atomics.store(progress, 1, 1);
    const before = process.memoryUsage();
    try {
      await target.run(caseRng(data.seed, i), ctx, i);
      accepted++;
    } catch (err) {
      if (err instanceof PgbbError) {
        rejected++;
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
        // "One clear line": no newline, no megabyte of fuzzed bytes in it.
        if (!err.message || /[\r\n]/.test(err.message) || err.message.length > 2000 || !err.code) {
          report('unclear error message', err, ` [${err.message.length} chars]`);
        }
      } else {
        report('not a PgbbError', err);
      }
    }
    const after = process.memoryUsage();
    const grew = (k: 'arrayBuffers' | 'heapUsed' | 'rss') => after[k] - before[k];
    if (grew('arrayBuffers') > limits.arrayBuffers) report('memory', new Error(`Buffers grew by ${(grew('arrayBuffers') / MiB).toFixed(1)} MiB in one case`));
    if (grew('heapUsed') > limits.heap) report('memory', new Error(`V8 heap grew by ${(grew('heapUsed') / MiB).toFixed(1)} MiB in one case`));
    if (grew('rss') > limits.rss) report('memory', new Error(`RSS grew by ${(grew('rss') / MiB).toFixed(1)} MiB in one case`));
    Atomics.store(progress, 1, 0);
  }
  const ms = Date.now() - started;
  await target.teardown?.(ctx);
  parentPort!.postMessage({ type: 'done', accepted, rejected, codes: Object.fromEntries(codes), ms });
}

main().catch((err) => {
  report('setup failed', err);
  parentPort!.postMessage({ type: 'done', accepted: 0, rejected: 0, codes: {}, ms: 0, failed: true });
});
