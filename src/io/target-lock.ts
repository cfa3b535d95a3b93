/**
 * One pgbb run per directory: `<dir>/.pgbb-lock`, for backup and restore
 * (sinks/target-dir.ts lockTarget, which creates and checks the directory,
 * then calls lockDir) and refresh (lockForRefresh) alike, so that they
 * exclude each other. The only lock pgbb has: every lock is a TargetLock.
 *
 * The file holds one line, `<pid> <start> <token>\n`: the holder's pid, its
 * start time (field 22 of /proc/<pid>/stat, `-` where there is no /proc) so
 * that a pid reused by another process is not taken for the holder, and 32
 * random hex digits that make every lock distinct. A lock is created whole:
 * written to `.pgbb-lock.<token>.tmp` (O_EXCL|O_NOFOLLOW, 0600), then link()ed
 * to `.pgbb-lock`, which fails if anything (file, link, FIFO) has that name,
 * so no reader ever sees a half-written lock. Older pgbb wrote `<pid>` or
 * `<pid> <hex>`; such a lock is judged by its pid alone.
 *
 * Taking over a dead holder's lock (refresh only: a refresh killed by
 * SIGKILL leaves its lock; backup refuses and says how to clear it) is
 * atomic: the runs that found the same stale lock race to link() a takeover
 * file whose name is derived from that lock's inode and content, so exactly
 * one of them wins for that lock, ever. The winner reads the lock again (same
 * inode, same content, holder still dead), removes it and links its own —
 * competing fairly, through link()'s exclusivity, with a run that found no
 * lock at all — then removes the takeover file. Losers are refused.
 *
 * The winner then removes what runs killed mid-way left (temporary and
 * takeover files whose holder is dead), so none ends up in a backup.
 *
 * Lock files are read with readLimited: a FIFO, a symlink, a device or a huge
 * file in the lock's place is one clear IoError, never a hang. Release removes
 * the lock only while it is still this run's own (same content).
 *
 * Errors: TargetLockedError (a live holder, a stale lock backup will not take
 * over, a lock pgbb did not write); IoError naming the lock file.
 */
import { constants, promises as fs } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { IoError, ioError, TargetLockedError } from '../errors';
import { LIMITS, readLimited } from './read-limited';
import { processRunning, processStartTime } from './live-cluster';

export const LOCK_FILE = '.pgbb-lock';

/** The lock and the files its creation and takeover use for a moment (`.pgbb-lock.<token>.tmp`, `.pgbb-lock.takeover-<key>`). */
export function isLockFileName(name: string): boolean {
  // Exactly the names acquire() makes (a 32-hex token or takeover key): anything else is someone's content.
  return name === LOCK_FILE || /^\.pgbb-lock\.(?:[0-9a-f]{32}\.tmp|takeover-[0-9a-f]{32})$/.test(name);
}

interface Held {
  file: string;
  /** The lock file's content: release never removes a lock another run made after ours went. */
  content: string;
  /** True when the run created the directory (lockTarget). */
  created: boolean;
}

/** Locks this process holds, by absolute directory path. */
const held = new Map<string, Held>();

/** This process's lock on `dir`, if it holds one. */
export function heldLock(dir: string): { created: boolean } | undefined {
  const h = held.get(path.resolve(dir));
  return h && { created: h.created };
}

interface Holder {
  pid: number;
  /** Start time in clock ticks since boot, or null when the lock did not record it. */
  start: string | null;
}

/** `<pid> <start|-> <token>`, or an older pgbb's `<pid>` / `<pid> <hex>`; null for anything else. */
function parseLock(text: string): Holder | null {
  const m = /^(\d{1,10}) (\d{1,20}|-) [0-9a-f]{32}\n$/.exec(text);
  if (m) return { pid: Number(m[1]), start: m[2] === '-' ? null : m[2] };
  const old = /^(\d{1,10})(?: [0-9a-f]{1,64})?\n?$/.exec(text);
  return old ? { pid: Number(old[1]), start: null } : null;
}

let ownStart: string | null | undefined;

/** Is the lock's holder still running? A live pid with another start time is another process. */
function holderAlive(h: Holder): boolean {
  return processRunning(h.pid, h.start);
}

interface SeenLock {
  text: string;
  ino: number;
}

/** The lock file as it is now, or null when there is none. */
async function readLock(file: string): Promise<SeenLock | null> {
  for (let tries = 0; tries < 8; tries++) {
    const before = await fs.lstat(file).catch(() => null);
    const buf = await readLimited(file, LIMITS.lockFile);
    const after = await fs.lstat(file).catch(() => null);
    if (!buf || !before || !after) return null;
    if (before.ino === after.ino) return { text: buf.toString('latin1'), ino: after.ino };
  }
  throw new IoError(`lock file "${file}" keeps changing while it is read`);
}

/**
 * Once the lock is ours: removes the temporary and takeover files that runs
 * killed mid-way left (their holder is dead), so that they do not end up in
 * the backup. A live run's files are its own to remove.
 */
async function removeLeftovers(dir: string, ownTmp: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const file = path.join(dir, name);
    if (name === LOCK_FILE || !isLockFileName(name) || file === ownTmp) continue;
    const text = await readLimited(file, LIMITS.lockFile).then((b) => b?.toString('latin1'), () => undefined);
    const h = text === undefined ? null : parseLock(text);
    if (h && !holderAlive(h)) await fs.unlink(file).catch(() => {});
  }
}

/** link(), reporting EEXIST as false. */
async function tryLink(from: string, to: string, file: string): Promise<boolean> {
  try {
    await fs.link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError('could not create lock file', file, err);
  }
}

function stale(dir: string, file: string, h: Holder): TargetLockedError {
  return new TargetLockedError(dir, `pid ${h.pid}, no longer running: remove "${file}" if nothing writes there`);
}

/**
 * Creates `<dir>/.pgbb-lock` for this run; with `takeOverDead`, replaces
 * (atomically, see above) a lock whose holder no longer runs.
 */
async function acquire(dir: string, takeOverDead: boolean): Promise<string> {
  const file = path.join(dir, LOCK_FILE);
  ownStart ??= processStartTime(process.pid);
  const token = randomBytes(16).toString('hex');
  const content = `${process.pid} ${ownStart ?? '-'} ${token}\n`;
  const tmp = path.join(dir, `${LOCK_FILE}.${token}.tmp`);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw ioError('could not create lock file', file, err);
  }
  try {
    try {
      await fh.writeFile(content);
    } catch (err) {
      throw ioError('could not write lock file', file, err);
    } finally {
      await fh.close().catch(() => {});
    }
    // A handful of rounds: each ends in a win, a refusal, or a lock that changed under us.
    for (let round = 0; round < 8; round++) {
      if (await tryLink(tmp, file, file)) {
        await removeLeftovers(dir, tmp);
        return content;
      }
      const seen = await readLock(file);
      if (!seen) continue;
      const h = parseLock(seen.text);
      if (!h) throw new TargetLockedError(dir, `lock file "${file}" was not written by pgbb: remove it if no pgbb run uses this directory`);
      if (holderAlive(h)) throw new TargetLockedError(dir, `pid ${h.pid}`);
      if (!takeOverDead) throw stale(dir, file, h);
      if (await takeOver(dir, file, tmp, seen, h)) {
        await removeLeftovers(dir, tmp);
        return content;
      }
    }
    throw new TargetLockedError(dir, `lock file "${file}" keeps changing`);
  } finally {
    await fs.unlink(tmp).catch(() => {});
  }
}

/** Replaces the stale lock `seen` by ours; false when the lock changed meanwhile (look again). */
async function takeOver(dir: string, file: string, tmp: string, seen: SeenLock, h: Holder): Promise<boolean> {
  // One name per lock instance: every run that found this very lock competes for it.
  const key = createHash('sha256').update(`${seen.ino}\0${seen.text}`).digest('hex').slice(0, 32);
  const mutex = path.join(dir, `${LOCK_FILE}.takeover-${key}`);
  if (!(await tryLink(tmp, mutex, file))) {
    const other = await readLock(mutex);
    if (!other) return false; // that takeover is over: look again
    const winner = parseLock(other.text);
    if (winner && holderAlive(winner)) throw new TargetLockedError(dir, `pid ${winner.pid}, which is taking over the stale lock of pid ${h.pid}`);
    throw new TargetLockedError(
      dir,
      `pid ${h.pid}, no longer running, and a takeover of its lock was interrupted: remove "${file}" and "${mutex}" if nothing writes there`,
    );
  }
  try {
    const again = await readLock(file);
    if (!again || again.ino !== seen.ino || again.text !== seen.text) return false;
    if (holderAlive(h)) throw new TargetLockedError(dir, `pid ${h.pid}`);
    // Only the holder of this lock's takeover file removes it.
    await fs.unlink(file).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not remove stale lock file', file, err);
    });
    // A run that found no lock at all may link first: then it holds the directory, and we look again.
    return await tryLink(tmp, file, file);
  } finally {
    await fs.unlink(mutex).catch(() => {});
  }
}

/** A run's hold on a directory, from lockDir, lockForRefresh or lockTarget (sinks/target-dir.ts). */
export interface TargetLock {
  path: string;
  /** True when the run created the directory. */
  created: boolean;
  /** Removes the lock, if still held (lockTarget: and the directory it created, if left empty). */
  release(): Promise<void>;
}

async function lock(dir: string, created: boolean, takeOverDead: boolean): Promise<TargetLock> {
  const abs = path.resolve(dir);
  if (held.has(abs)) throw new TargetLockedError(abs, `pid ${process.pid}, this process`);
  const content = await acquire(abs, takeOverDead);
  held.set(abs, { file: path.join(abs, LOCK_FILE), content, created });
  return { path: abs, created, release: () => releaseHeldLock(abs) };
}

/** Locks `dir` (which exists) for this run; refuses any existing lock, stale or not. */
export function lockDir(dir: string, created: boolean): Promise<TargetLock> {
  return lock(dir, created, false);
}

/**
 * A refresh's lock on DIR, from before it reads the directory until it has
 * committed or failed. A lock whose holder is dead is taken over (the marker
 * and journal, not the lock, carry what the dead run left unfinished).
 */
export function lockForRefresh(dir: string): Promise<TargetLock> {
  return lock(dir, false, true);
}

/** Removes this process's lock on `dir`, if it holds one (and the file is still its own). */
export async function releaseHeldLock(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const lock = held.get(abs);
  if (!lock) return;
  held.delete(abs);
  const buf = await readOwnLock(lock.file);
  if (buf && buf.toString('latin1') === lock.content) await fs.unlink(lock.file).catch(() => {});
}

/**
 * The lock file's bytes, or null. A run that failed for want of descriptors
 * (EMFILE) releases while its sockets are still closing: it waits a little
 * for one rather than leave its lock, and so its directory, behind.
 */
async function readOwnLock(file: string): Promise<Buffer | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readLimited(file, LIMITS.lockFile);
    } catch (err) {
      // readLimited wraps the system error in an IoError (its cause).
      const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
      if ((code !== 'EMFILE' && code !== 'ENFILE') || attempt >= 40) return null;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** Who holds the lock `file`, for a TargetLockedError: a live pid, or how to clear a stale lock. */
export async function lockHolder(file: string): Promise<string> {
  const seen = await readLock(file);
  const h = seen && parseLock(seen.text);
  if (!h) return `lock file "${file}"`;
  return holderAlive(h) ? `pid ${h.pid}` : `pid ${h.pid}, no longer running: remove "${file}" if nothing writes there`;
}
