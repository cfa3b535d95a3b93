/**
 * Runs a fuzz target (test/fuzz/targets/<file>.ts, export <name>) from a
 * node:test test, in a worker thread (./worker.ts), and fails the test
 * listing every violation: an error that is not a PgbbError, an unclear
 * error message, memory growth beyond the target's limits, an uncaught
 * exception, or a case that runs longer than `timeoutMs` (the worker is then
 * terminated: a synchronous loop cannot be interrupted any other way).
 *
 * Environment: PGBB_FUZZ_SEED (default: fixed per target, so runs repeat),
 * PGBB_FUZZ_ITERATIONS (cases per target), PGBB_FUZZ_CASE (replay one case).
 * The seed, case count and time are printed as test diagnostics.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export interface FuzzRun {
  accepted: number;
  rejected: number;
  codes: Record<string, number>;
  ms: number;
}

interface Violation {
  case: number;
  kind: string;
  name: string;
  message: string;
  stack: string;
}

function defaultSeed(id: string): number {
  let h = 0x811c9dc5;
  for (const c of id) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative integer`);
  return n;
}

export async function fuzz(t: TestContext, file: string, name: string, iterations: number, opts: { timeoutMs?: number } = {}): Promise<FuzzRun> {
  const id = `${file}#${name}`;
  const seed = envInt('PGBB_FUZZ_SEED') ?? defaultSeed(id);
  const n = envInt('PGBB_FUZZ_ITERATIONS') ?? iterations;
  const only = envInt('PGBB_FUZZ_CASE') ?? -1;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const progress = new SharedArrayBuffer(8);
  const state = new Int32Array(progress);
  const worker = new Worker(join(__dirname, 'worker.js'), { workerData: { file, name, seed, iterations: n, only, progress } });
  const violations: Violation[] = [];
  const result = await new Promise<FuzzRun>((resolve) => {
    let last = -1;
    let since = Date.now();
    let done: FuzzRun | null = null;
    const watchdog = setInterval(() => {
      const i = Atomics.load(state, 0);
      const running = Atomics.load(state, 1) === 1;
      if (i !== last || !running) {
        last = i;
        since = Date.now();
        return;
      }
      if (Date.now() - since > timeoutMs) {
        violations.push({ case: i, kind: 'hang', name: '-', message: `case still running after ${timeoutMs} ms`, stack: '' });
        void worker.terminate();
      }
    }, 50);
    worker.on('message', (m: { type: string } & Violation & FuzzRun) => {
      if (m.type === 'violation') violations.push(m);
      else if (m.type === 'done') done = { accepted: m.accepted, rejected: m.rejected, codes: m.codes, ms: m.ms };
    });
    worker.on('error', (err) => violations.push({ case: Atomics.load(state, 0), kind: 'worker crashed', name: err.name, message: err.message, stack: err.stack ?? '' }));
    worker.on('exit', () => {
      clearInterval(watchdog);
      resolve(done ?? { accepted: 0, rejected: 0, codes: {}, ms: 0 });
    });
  });
  const codes = Object.entries(result.codes).map(([c, k]) => `${c} ${k}`).join(', ');
  t.diagnostic(
    `${id}: seed ${seed}, ${only >= 0 ? `case ${only} of ` : ''}${n} cases in ${result.ms} ms: ` +
      `${result.accepted} accepted, ${result.rejected} rejected (${codes || 'none'}), ${violations.length} violations`,
  );
  if (violations.length) {
    // One line per distinct failure, with how to replay its first case.
    const seen = new Map<string, { v: Violation; count: number }>();
    for (const v of violations) {
      const key = `${v.kind}|${v.name}|${v.stack.split('\n')[0]}`;
      const s = seen.get(key);
      if (s) s.count++;
      else seen.set(key, { v, count: 1 });
    }
    const lines = [...seen.values()].map(
      ({ v, count }) =>
        `- ${v.kind}: ${v.name}: ${v.message} (${count}×; replay: PGBB_FUZZ_SEED=${seed} PGBB_FUZZ_CASE=${v.case} PGBB_FUZZ_ITERATIONS=${n})\n${v.stack}`,
    );
    throw new Error(`${id}: ${violations.length} violations in ${n} cases\n${lines.join('\n')}`);
  }
  if (result.accepted + result.rejected !== (only >= 0 ? 1 : n)) throw new Error(`${id}: the worker ran ${result.accepted + result.rejected} of ${n} cases`);
  return result;
}
