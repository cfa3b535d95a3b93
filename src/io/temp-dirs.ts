/**
 * pgbb's temporary directories: a streamed-WAL spool (`-D -`), a WAL check's
 * segments, a spooled stdin archive, an S3 chain rebuilt for verify.
 *
 *   makeTempDir(parent, kind)   `<parent>/pgbb-<kind>-<boot>.<ns>.<pid>.<start>-XXXXXX`,
 *                               0700, after sweepStaleTempDirs(parent)
 *   sweepStaleTempDirs(parent)  removes those a run that is gone left; their paths
 *
 * A run removes its directory when it ends, whatever happens, but not when
 * it is killed (kill -9, the OOM killer): a WAL spool can be gigabytes, and
 * one left in $TMPDIR after every such kill fills it. So the name says who
 * made it: the boot (/proc/sys/kernel/random/boot_id: the directory may be
 * shared with another host, or outlive a reboot), the pid namespace (runs
 * in other containers sharing it have pids we cannot see), the pid, and the
 * process's start time (field 22 of /proc/<pid>/stat: a reused pid is not
 * the maker).
 *
 * Removed is only what this uid made and whose maker is gone: a name of
 * exactly that form with our boot and namespace, a real directory (lstat:
 * never a link), owned by this uid, mode 0700, whose pid does not run or runs
 * with another start time. rm -r walks by path, so the parent must be one
 * where nobody else can swap our directory for a link between the check and
 * the removal: the parent and every directory above it (after realpath) are
 * root's or ours, and writable by no one else unless sticky (as /tmp is).
 * Anywhere else nothing is swept. Sweeping is best-effort and silent:
 * whatever cannot be read or judged stays. The parent is read entry by entry
 * (a $TMPDIR of a million names costs time, not memory). Without a /proc
 * that is this process's (none, or another pid namespace's: /proc/self is
 * not our pid) the maker cannot be named: the directory is
 * `pgbb-<kind>-XXXXXX` and nothing is swept.
 *
 * Errors: makeTempDir throws the system error of mkdir/mkdtemp (callers name it).
 */
import { lstatSync, mkdtempSync, opendirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { processRunning, processStartTime } from './live-cluster';

export type TempKind = 'wal' | 'walcheck' | 'stdin' | 'verify-chain';

const NAME = /^pgbb-(?:wal|walcheck|stdin|verify-chain)-([0-9a-f]{32}\.\d{1,20})\.(\d{1,10})\.(\d{1,20})-[A-Za-z0-9]{6}$/;

/** `<boot id, 32 hex>.<pid namespace inode>`, or null. */
function hostAndNamespace(): string | null {
  try {
    // A /proc mounted for another pid namespace would judge the wrong processes.
    if (readlinkSync('/proc/self') !== String(process.pid)) return null;
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '');
    const ns = /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return /^[0-9a-f]{32}$/.test(boot) && ns ? `${boot}.${ns}` : null;
  } catch {
    return null;
  }
}

let maker: string | null | undefined;

/** `<boot>.<ns>.<pid>.<start>` of this process, or null without a /proc of our own. */
function makerTag(): string | null {
  if (maker === undefined) {
    const where = hostAndNamespace();
    const start = processStartTime(process.pid);
    maker = where && start ? `${where}.${process.pid}.${start}` : null;
  }
  return maker;
}

export function makeTempDir(parent: string, kind: TempKind): string {
  sweepStaleTempDirs(parent);
  const tag = makerTag();
  // mkdtemp makes it 0700.
  return mkdtempSync(path.join(parent, tag ? `pgbb-${kind}-${tag}-` : `pgbb-${kind}-`));
}

export function sweepStaleTempDirs(parent: string): string[] {
  const tag = makerTag();
  const uid = process.getuid?.();
  const real = tag && uid !== undefined ? trustedParent(parent, uid) : null;
  if (!tag || uid === undefined || !real) return [];
  const where = tag.slice(0, tag.indexOf('.', 33));
  const removed: string[] = [];
  let dir;
  try {
    dir = opendirSync(real);
  } catch {
    return removed;
  }
  try {
    for (let e = dir.readSync(); e; e = dir.readSync()) {
      const m = NAME.exec(e.name);
      // (Where the filesystem gives no type, Node lstats the entry.)
      if (!m || m[1] !== where || !e.isDirectory()) continue;
      const full = path.join(real, e.name);
      if (!stale(full, Number(m[2]), m[3], uid)) continue;
      try {
        rmSync(full, { recursive: true, force: true });
        removed.push(full);
      } catch {
        // Someone else's problem now; it stays.
      }
    }
  } catch {
    // An unreadable parent, or an entry gone while Node lstat'ed it: nothing more is swept this time.
  } finally {
    dir.closeSync();
  }
  return removed;
}

/**
 * The parent's real path when nobody but root and this uid can rename its
 * entries: it and each directory above it belong to root or to us, and are
 * writable by no one else or sticky. Else null.
 */
function trustedParent(parent: string, uid: number): string | null {
  let real: string;
  try {
    real = realpathSync(parent);
  } catch {
    return null;
  }
  for (let d = real; ; d = path.dirname(d)) {
    try {
      const st = lstatSync(d);
      if (!st.isDirectory() || (st.uid !== 0 && st.uid !== uid)) return null;
      if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return null;
    } catch {
      return null;
    }
    if (d === path.dirname(d)) return real;
  }
}

function stale(full: string, pid: number, start: string, uid: number): boolean {
  let st;
  try {
    st = lstatSync(full);
  } catch {
    return false;
  }
  if (!st.isDirectory() || (st.mode & 0o7777) !== 0o700 || st.uid !== uid) return false;
  // A live pid we cannot read the start of may be the maker: it runs.
  return !processRunning(pid, start);
}
