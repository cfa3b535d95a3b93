/**
 * pgbb's temporary directories: a streamed-WAL spool (`-D -`), a WAL check's
 * segments, a spooled stdin archive, an S3 chain rebuilt for verify.
 *
 *   makeTempDir(parent, kind)   `<parent>/pgbb-<kind>-<ns>.<pid>.<start>-XXXXXX`,
 *                               0700, after sweepStaleTempDirs(parent)
 *   sweepStaleTempDirs(parent)  removes those a run that is gone left; their paths
 *
 * A run removes its directory when it ends, whatever happens, but not when
 * it is killed (kill -9, the OOM killer): a WAL spool can be gigabytes, and
 * one left in $TMPDIR after every such kill fills it. So the name says who
 * made it: the pid namespace (readlink /proc/self/ns/pid, so that runs in
 * other containers sharing the directory, whose pids we cannot see, are never
 * judged), the pid, and the process's start time (field 22 of
 * /proc/<pid>/stat, so that a reused pid is not taken for the maker).
 *
 * Removed is only what this uid made and whose maker is gone: a name of
 * exactly that form with our namespace, a real directory (lstat: never a
 * link), owned by this uid, mode 0700, whose pid does not run or runs with
 * another start time. rm -r unlinks links rather than following them, and no
 * other user can change a 0700 directory's entries. Sweeping is best-effort
 * and silent: whatever cannot be read or judged stays. The parent is read
 * entry by entry (a $TMPDIR of a million names costs time, not memory).
 * Without /proc the maker cannot be named: the directory is `pgbb-<kind>-XXXXXX`
 * and nothing is swept.
 *
 * Errors: makeTempDir throws the system error of mkdir/mkdtemp (callers name it).
 */
import { lstatSync, mkdirSync, mkdtempSync, opendirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { pidAlive } from './live-cluster';

export type TempKind = 'wal' | 'walcheck' | 'stdin' | 'verify-chain';

const NAME = /^pgbb-(?:wal|walcheck|stdin|verify-chain)-(\d{1,20})\.(\d{1,10})\.(\d{1,20})-[A-Za-z0-9]{6}$/;

/** Field 22 of /proc/<pid>/stat, or null (no such process, no /proc). */
export function startTimeOf(pid: number | 'self'): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // After the command name, which may hold spaces and parentheses.
    const start = text.slice(text.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return start && /^\d+$/.test(start) ? start : null;
  } catch {
    return null;
  }
}

function pidNamespace(): string | null {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? null;
  } catch {
    return null;
  }
}

let maker: string | null | undefined;

/** `<ns>.<pid>.<start>` of this process, or null without /proc. */
function makerTag(): string | null {
  if (maker === undefined) {
    const ns = pidNamespace();
    const start = startTimeOf('self');
    maker = ns && start ? `${ns}.${process.pid}.${start}` : null;
  }
  return maker;
}

export function makeTempDir(parent: string, kind: TempKind): string {
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  sweepStaleTempDirs(parent);
  const tag = makerTag();
  // mkdtemp makes it 0700.
  return mkdtempSync(path.join(parent, tag ? `pgbb-${kind}-${tag}-` : `pgbb-${kind}-`));
}

export function sweepStaleTempDirs(parent: string): string[] {
  const tag = makerTag();
  if (!tag) return [];
  const ns = tag.slice(0, tag.indexOf('.'));
  const uid = process.getuid?.();
  const removed: string[] = [];
  let dir;
  try {
    dir = opendirSync(parent);
  } catch {
    return removed;
  }
  try {
    for (let e = dir.readSync(); e; e = dir.readSync()) {
      const m = NAME.exec(e.name);
      if (!m || m[1] !== ns || !e.isDirectory()) continue;
      const full = path.join(parent, e.name);
      if (!stale(full, Number(m[2]), m[3], uid)) continue;
      try {
        rmSync(full, { recursive: true, force: true });
        removed.push(full);
      } catch {
        // Someone else's problem now; it stays.
      }
    }
  } catch {
    // An unreadable parent: nothing more is swept.
  } finally {
    dir.closeSync();
  }
  return removed;
}

function stale(full: string, pid: number, start: string, uid: number | undefined): boolean {
  let st;
  try {
    st = lstatSync(full);
  } catch {
    return false;
  }
  if (!st.isDirectory() || (st.mode & 0o7777) !== 0o700 || (uid !== undefined && st.uid !== uid)) return false;
  if (pid === process.pid) return start !== startTimeOf('self');
  if (!pidAlive(pid)) return true;
  const now = startTimeOf(pid);
  // A live pid we cannot read the start of: it may be the maker.
  return now !== null && now !== start;
}
