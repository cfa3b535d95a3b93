/**
 * temp-dirs (src/io/temp-dirs.ts): a directory a run that is gone left is
 * removed by the next one made in the same parent; anything else with a
 * like name (a live run's, a link, another mode, another namespace, a file,
 * an older pgbb's) stays, and a link's target is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTempDir, sweepStaleTempDirs } from '../../../src/io/temp-dirs';
import { processStartTime } from '../../../src/io/live-cluster';

const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '');
const ns = `${boot}.${/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]}`;
const otherNs = `${boot}.${Number(ns.slice(33)) + 1}`;
const otherBoot = `${'0'.repeat(32)}.${ns.slice(33)}`;
const pidOne = processStartTime(1);
const ownStart = processStartTime(process.pid)!;

/** A pid and start time of a process that has exited. */
function deadProcess(): { pid: number; start: string } {
  const r = spawnSync('sh', ['-c', 'echo $$; cut -d" " -f22 /proc/$$/stat'], { encoding: 'utf8' });
  const [pid, start] = r.stdout.trim().split('\n');
  return { pid: Number(pid), start };
}

function dirNamed(parent: string, name: string, mode = 0o700): string {
  const d = join(parent, name);
  mkdirSync(d);
  chmodSync(d, mode);
  mkdirSync(join(d, 'archive_status'));
  writeFileSync(join(d, '000000010000000000000002.partial'), 'wal');
  return d;
}

test('a killed run\'s spool goes when the next is made; a live run\'s, links, other modes, namespaces and names stay', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-tempdirs-test-'));
  try {
    const parent = join(root, 'tmp');
    mkdirSync(parent);
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'data');
    const dead = deadProcess();
    assert.ok(dead.pid > 0 && /^\d+$/.test(dead.start), JSON.stringify(dead));
    const stale = [
      dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-AbC123`),
      dirNamed(parent, `pgbb-walcheck-${ns}.${dead.pid}.${dead.start}-xyz789`),
      dirNamed(parent, `pgbb-stdin-${ns}.${dead.pid}.${dead.start}-Q1w2E3`),
      dirNamed(parent, `pgbb-verify-chain-${ns}.${dead.pid}.${dead.start}-zzzzzz`),
      // Our own pid with another start time: a pid reused since.
      dirNamed(parent, `pgbb-wal-${ns}.${process.pid}.${Number(ownStart) + 1}-reused`),
      // pid 1 runs, with another start time than this.
      ...(pidOne ? [dirNamed(parent, `pgbb-wal-${ns}.1.${Number(pidOne) + 7}-pidone`)] : []),
    ];
    // A link inside a stale spool is removed, never followed.
    symlinkSync(outside, join(stale[0], 'link-out'));
    const kept = [
      dirNamed(parent, `pgbb-wal-${ns}.${process.pid}.${ownStart}-live01`),
      ...(pidOne ? [dirNamed(parent, `pgbb-wal-${ns}.1.${pidOne}-pidon1`)] : []),
      dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-mode75`, 0o755),
      dirNamed(parent, `pgbb-wal-${otherNs}.${dead.pid}.${dead.start}-otherN`),
      dirNamed(parent, `pgbb-wal-${otherBoot}.${dead.pid}.${dead.start}-otherB`),
      dirNamed(parent, 'pgbb-wal-OldOne'),
      dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-toolong7`),
    ];
    if (process.getuid!() === 0) {
      // Another user's, named as ours.
      const theirs = dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-theirs`);
      chownSync(theirs, 65534, 65534);
      kept.push(theirs);
    }
    const link = join(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-linked`);
    symlinkSync(outside, link);
    const file = join(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-afile1`);
    writeFileSync(file, 'x');

    const made = makeTempDir(parent, 'wal');
    assert.match(made, new RegExp(`/pgbb-wal-${ns.replace('.', '\\.')}\\.${process.pid}\\.${ownStart}-[A-Za-z0-9]{6}$`));
    for (const d of stale) assert.ok(!existsSync(d), `removed: ${d}`);
    for (const d of kept) assert.ok(existsSync(join(d, '000000010000000000000002.partial')), `kept: ${d}`);
    assert.equal(readlinkSync(link), outside);
    assert.ok(existsSync(file));
    assert.deepEqual(readdirSync(outside), ['keep']);
    // Its own directory is a live run's: the next sweep leaves it.
    assert.deepEqual(sweepStaleTempDirs(parent), []);
    assert.ok(existsSync(made));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a parent others can rename entries in (not sticky, or another user\'s) is not swept; a missing one is not made', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-tempdirs-test-'));
  try {
    const dead = deadProcess();
    const name = `pgbb-wal-${ns}.${dead.pid}.${dead.start}-AbC123`;
    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const left = dirNamed(open, name);
    assert.deepEqual(sweepStaleTempDirs(open), []);
    assert.ok(existsSync(left), 'world-writable, not sticky: kept');
    chmodSync(open, 0o1777);
    assert.deepEqual(sweepStaleTempDirs(open), [left]);
    // Below a world-writable directory, a parent of our own is no safer: its name can be swapped.
    const nested = join(open, 'mine');
    mkdirSync(nested, { mode: 0o700 });
    chmodSync(open, 0o777);
    const deep = dirNamed(nested, name);
    assert.deepEqual(sweepStaleTempDirs(nested), []);
    assert.ok(existsSync(deep));
    if (process.getuid!() === 0) {
      chmodSync(open, 0o755);
      chownSync(nested, 65534, 65534);
      assert.deepEqual(sweepStaleTempDirs(nested), [], 'another user owns the parent');
      assert.ok(existsSync(deep));
      chownSync(nested, 0, 0);
      assert.deepEqual(sweepStaleTempDirs(nested), [deep]);
    }
    assert.deepEqual(sweepStaleTempDirs(join(root, 'missing')), []);
    assert.throws(() => makeTempDir(join(root, 'missing'), 'wal'), /ENOENT/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
