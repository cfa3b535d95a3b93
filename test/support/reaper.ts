/**
 * Makes sure no PostgreSQL server started by the harness outlives the process
 * that started it, and kills single servers by pid.
 *
 * In:  postmaster pids, registered when a server has started and forgotten
 *   when it has stopped.
 * Out: on process `exit`, SIGINT or SIGTERM every registered postmaster gets
 *   SIGQUIT (PostgreSQL's immediate shutdown, which also ends its backends),
 *   SIGKILL if it is still there after a few seconds, and then the harness's
 *   temp directory registered with it is removed, so aborted runs do not
 *   pile up clusters in /tmp.
 *   Signal handlers exist only while some server is registered, and a signal
 *   is re-raised afterwards when nobody else listens for it, so the process
 *   still dies the way it would have without us.
 *
 * Why by pid and SIGQUIT: pg_ctl needs a child process and time, neither of
 * which an `exit` handler has; the postmaster is not our child (pg_ctl's
 * shell exits), so its pid from postmaster.pid is all we hold.
 */

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** postmaster pid → the directory to remove once it is dead (undefined: keep everything). */
const running = new Map<number, string | undefined>();
const EXIT_GRACE_MS = 3000;
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let exitHookInstalled = false;

export function registerServer(pid: number, removeOnExit?: string): void {
  running.set(pid, removeOnExit);
  if (!exitHookInstalled) {
    process.on('exit', killAllNow);
    exitHookInstalled = true;
  }
  if (running.size === 1) for (const sig of SIGNALS) process.on(sig, onSignal);
}

export function forgetServer(pid: number): void {
  running.delete(pid);
  if (running.size === 0) for (const sig of SIGNALS) process.removeListener(sig, onSignal);
}

/** Synchronous on purpose: `exit` handlers cannot await, so we sleep with Atomics.wait. */
function killAllNow(): void {
  const pids = [...running.keys()];
  signalAll(pids, 'SIGQUIT');
  const deadline = Date.now() + EXIT_GRACE_MS;
  while (pids.some(isAlive) && Date.now() < deadline) sleepSync(20);
  signalAll(pids.filter(isAlive), 'SIGKILL');
  while (pids.some(isAlive) && Date.now() < deadline + 1000) sleepSync(20);
  for (const [pid, dir] of running) {
    if (dir === undefined || isAlive(pid)) continue;
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: an exit handler must not throw
    }
  }
  running.clear();
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function onSignal(sig: NodeJS.Signals): void {
  killAllNow();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

/**
 * Whether pid names a live process. A zombie counts as dead: in containers
 * PID 1 may never reap the orphaned postmaster, and kill(pid, 0) would still
 * succeed on it.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // Without procfs, trust kill(0); with it, the process vanished between the checks.
    return !existsSync('/proc/self/stat');
  }
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/** SIGQUIT, then SIGKILL if the server is still there after graceMs. Resolves once it is gone. */
export async function killServer(pid: number, graceMs = 5000): Promise<void> {
  for (const sig of ['SIGQUIT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, sig);
    } catch {
      return;
    }
    if (await waitForExit(pid, graceMs)) return;
  }
  throw new Error(`postmaster ${pid} survived SIGQUIT and SIGKILL`);
}
