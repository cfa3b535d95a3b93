/**
 * Helpers for the failure tests (test/integration/failures*.test.ts): pgbb
 * children that can be signalled mid-run, and what the server has left
 * (walsenders, replication slots, a running base backup).
 *
 *   const p = spawnPgbb([...]);        // tracked; reapChildren() in after()
 *   await waitFor('streaming', () => backupStreaming(cluster));
 *   p.child.kill('SIGTERM');
 *   const r = await p.done;            // code, signal, stdout, stderr, endedAt
 *   await serverClean(cluster);        // ms until no walsender and no slot
 *
 * Errors: waitFor rejects naming what it waited for; serverClean rejects
 * listing what is still there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from './cluster';
import { PGBB_CLI, type PgbbRun } from './pgbb';

export interface SpawnedPgbb {
  child: ChildProcess;
  /** Resolves when the process has exited and its output is read; endedAt is performance.now() then. */
  done: Promise<PgbbRun & { endedAt: number }>;
}

const children = new Set<ChildProcess>();

/** Runs the built CLI as a child; stdout is collected unless `stdout: 'keep'` (the caller reads child.stdout). */
export function spawnPgbb(args: string[], opts: { env?: NodeJS.ProcessEnv; stdout?: 'collect' | 'keep'; shellPrefix?: string } = {}): SpawnedPgbb {
  const child = opts.shellPrefix
    ? spawn('/bin/sh', ['-c', `${opts.shellPrefix}; exec "$0" "$@"`, process.execPath, PGBB_CLI, ...args], {
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, [PGBB_CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  if (opts.stdout !== 'keep') child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<PgbbRun & { endedAt: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr, endedAt: performance.now() });
    });
  });
  return { child, done };
}

/** Kills (SIGKILL) and waits for every child still running: for after(). */
export async function reapChildren(): Promise<void> {
  const left = [...children];
  for (const c of left) c.kill('SIGKILL');
  await Promise.all(left.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('close', r)))));
}

/** Polls fn until it returns something truthy; rejects after timeoutMs naming `what`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface ServerSide {
  walsenders: { pid: number; waitEvent: string | null }[];
  slots: string[];
}

export async function serverSide(c: Cluster): Promise<ServerSide> {
  const walsenders = await c.query<{ pid: number; wait_event: string | null }>(
    `SELECT pid, wait_event FROM pg_stat_activity WHERE backend_type = 'walsender'`,
  );
  const slots = await c.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots');
  return { walsenders: walsenders.map((w) => ({ pid: w.pid, waitEvent: w.wait_event })), slots: slots.map((s) => s.slot_name) };
}

/** Waits until the server has no walsender and no replication slot; resolves with the ms that took. */
export async function serverClean(c: Cluster, timeoutMs = 5000): Promise<number> {
  const t0 = performance.now();
  let last: ServerSide | null = null;
  try {
    await waitFor('no walsender and no slot', async () => {
      last = await serverSide(c);
      return last.walsenders.length === 0 && last.slots.length === 0;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; still there: ${JSON.stringify(last)}`);
  }
  return Math.round(performance.now() - t0);
}

/** True once the server sends files (pg_stat_progress_basebackup), i.e. after the checkpoint. */
export async function backupStreaming(c: Cluster): Promise<boolean> {
  const rows = await c.query<{ phase: string }>('SELECT phase FROM pg_stat_progress_basebackup');
  return rows.some((r) => r.phase === 'streaming database files');
}

/** The JSON lines of a --json run's stderr; throws on a line that is not JSON. */
export function jsonEvents(stderr: string): Record<string, any>[] {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      let ev: Record<string, any>;
      try {
        ev = JSON.parse(l) as Record<string, any>;
      } catch {
        throw new Error(`not a JSON line in --json output: ${JSON.stringify(l)}`);
      }
      // Every line carries its timestamp; checked here and left out, so that tests compare what the line says.
      const { time, ...rest } = ev;
      if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) throw new Error(`a --json line without its time: ${l}`);
      return rest;
    });
}

/** The one error event of a --json run (asserting there is exactly one). */
export function jsonError(stderr: string): { code: string; message: string } {
  const errors = jsonEvents(stderr).filter((e) => e.event === 'error');
  if (errors.length !== 1) throw new Error(`expected one error event, got ${errors.length}: ${stderr}`);
  return errors[0] as { code: string; message: string };
}
