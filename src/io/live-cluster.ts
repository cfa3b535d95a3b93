/**
 * Is this directory the data directory of a running PostgreSQL server?
 * Asked before anything is read or written in a directory pgbb was pointed
 * at (refresh, restore, backup targets): one mistyped `-D $PGDATA` must never
 * touch a live cluster.
 *
 * A running postmaster holds `postmaster.pid` (miscinit.c CreateLockFile):
 * line 1 its pid, line 7 the key and id of its System V shared memory
 * segment (pg_ctl and PostgreSQL itself judge liveness by these two). The
 * directory is live when that pid is alive, or when that segment still
 * exists with processes attached (a server whose pid this process cannot see,
 * in another PID namespace, or its backends after the postmaster died).
 * A base backup never contains postmaster.pid (BASE_BACKUP excludes it).
 *
 * A directory *inside* a live data directory is refused too (a new
 * directory there changes the live cluster: its next base backup carries
 * it, or fails on a directory the server may not read).
 *
 * Errors: LiveDataDirectoryError; IoError for a postmaster.pid pgbb cannot
 * read safely (a FIFO, a link, huge).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PgbbError } from '../errors';
import { readLimited, readLimitedSync } from './read-limited';

export const POSTMASTER_PID = 'postmaster.pid';

export class LiveDataDirectoryError extends PgbbError {
  constructor(message: string) {
    super('live_data_directory', message);
  }
}

export interface PostmasterState {
  file: string;
  pid: number | null;
  /** The pid runs, or the shared memory segment has processes attached. */
  alive: boolean;
  why: string;
}

/** kill(pid, 0): the process exists (EPERM: it does, and is another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses); null without one. */
export function processStartTime(pid: number): string | null {
  let buf: Buffer | null;
  try {
    buf = readLimitedSync(`/proc/${pid}/stat`, { maxBytes: 4096, what: 'process status' });
  } catch {
    return null;
  }
  if (!buf) return null;
  const text = buf.toString('latin1');
  const start = text.slice(text.lastIndexOf(')') + 2).split(' ')[22 - 3];
  return start && /^\d+$/.test(start) ? start : null;
}

/**
 * Does the process that had `pid` and start time `start` still run? A live
 * pid with another start time is another process (the pid was reused);
 * without a recorded start, or without /proc to read it, the pid decides.
 */
export function processRunning(pid: number, start: string | null): boolean {
  if (pid <= 0 || !pidAlive(pid)) return false;
  if (start === null) return true;
  const now = processStartTime(pid);
  return now === null || now === start;
}

/** Processes attached to System V segment `shmid`, from /proc/sysvipc/shm; 0 when it is gone or unknown. */
async function shmAttached(shmid: number): Promise<number> {
  const text = await fs.readFile('/proc/sysvipc/shm', 'utf8').catch(() => '');
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // key shmid perms size cpid lpid nattch …
    if (f.length > 6 && Number(f[1]) === shmid) return Number(f[6]) || 0;
  }
  return 0;
}

/** What `dir/postmaster.pid` says, or null when there is none. */
export async function postmasterState(dir: string): Promise<PostmasterState | null> {
  const file = path.join(path.resolve(dir), POSTMASTER_PID);
  const buf = await readLimited(file, { maxBytes: 64 * 1024, what: POSTMASTER_PID });
  if (!buf) return null;
  const lines = buf.toString('latin1').split('\n');
  const pid = /^\s*-?(\d+)\s*$/.exec(lines[0] ?? '') ? Math.abs(Number(lines[0])) : null;
  if (pid !== null && pid > 0 && pidAlive(pid)) return { file, pid, alive: true, why: `pid ${pid} is running` };
  const shm = /^\s*\d+\s+(\d+)\s*$/.exec(lines[6] ?? '');
  if (shm) {
    const n = await shmAttached(Number(shm[1]));
    if (n > 0) return { file, pid, alive: true, why: `its shared memory segment ${shm[1]} has ${n} processes attached` };
  }
  return { file, pid, alive: false, why: pid ? `pid ${pid} is not running` : 'it names no pid' };
}

/** Refuses a directory a PostgreSQL server is running on; `doing` says what pgbb was about to do. */
export async function refuseLiveDataDirectory(dir: string, doing: string): Promise<PostmasterState | null> {
  const st = await postmasterState(dir);
  if (st?.alive) {
    throw new LiveDataDirectoryError(
      `"${path.resolve(dir)}" is the data directory of a running PostgreSQL server (${POSTMASTER_PID}: ${st.why}): refusing to ${doing}`,
    );
  }
  return st;
}

/**
 * Refuses `dir` (existing or not) when it lies below a running server's data
 * directory: each directory above it is checked, from where its path really
 * leads (links resolved), so another way into the same data directory counts.
 * `dir` itself is refuseLiveDataDirectory's. An ancestor's postmaster.pid that
 * cannot be read is no proof of a server and is passed over.
 */
export async function refuseInsideLiveDataDirectory(dir: string, doing: string): Promise<void> {
  const abs = path.resolve(dir);
  let cur = abs;
  let real: string | null = null;
  for (;;) {
    real = await fs.realpath(cur).catch(() => null);
    if (real !== null) break;
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
  // The deepest existing part: itself when `dir` exists (checked by refuseLiveDataDirectory), else it is above `dir`.
  let at = cur === abs ? path.dirname(real) : real;
  for (;;) {
    const st = await postmasterState(at).catch(() => null);
    if (st?.alive) {
      throw new LiveDataDirectoryError(
        `"${abs}" lies inside "${at}", the data directory of a running PostgreSQL server (${POSTMASTER_PID}: ${st.why}): refusing to ${doing}`,
      );
    }
    const up = path.dirname(at);
    if (up === at) return;
    at = up;
  }
}
