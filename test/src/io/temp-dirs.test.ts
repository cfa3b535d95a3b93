/**
 * temp-dirs (src/io/temp-dirs.ts): a directory a run that is gone left is
 * removed by the next one made in the same parent; anything else with a
 * like name (a live run's, a link, another mode, another namespace, a file,
 * an older pgbb's) stays, and a link's target is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTempDir, startTimeOf, sweepStaleTempDirs } from '../../../src/io/temp-dirs';

const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1];
const ownStart = startTimeOf('self')!;

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
      dirNamed(parent, `pgbb-wal-${ns}.1.${Number(startTimeOf(1)) + 7}-pidone`),
    ];
    const kept = [
      dirNamed(parent, `pgbb-wal-${ns}.${process.pid}.${ownStart}-live01`),
      dirNamed(parent, `pgbb-wal-${ns}.1.${startTimeOf(1)}-pidone`),
      dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-mode75`, 0o755),
      dirNamed(parent, `pgbb-wal-${Number(ns) + 1}.${dead.pid}.${dead.start}-otherN`),
      dirNamed(parent, 'pgbb-wal-OldOne'),
      dirNamed(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-toolong7`),
    ];
    const link = join(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-linked`);
    symlinkSync(outside, link);
    const file = join(parent, `pgbb-wal-${ns}.${dead.pid}.${dead.start}-afile1`);
    writeFileSync(file, 'x');

    const made = makeTempDir(parent, 'wal');
    assert.match(made, new RegExp(`/pgbb-wal-${ns}\\.${process.pid}\\.${ownStart}-[A-Za-z0-9]{6}$`));
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

test('a parent that does not exist is made (0700); one that cannot be read is not swept and still fails clearly', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-tempdirs-test-'));
  try {
    const made = makeTempDir(join(root, 'a', 'b'), 'stdin');
    assert.ok(existsSync(made));
    assert.deepEqual(sweepStaleTempDirs(join(root, 'missing')), []);
    writeFileSync(join(root, 'f'), '');
    assert.throws(() => makeTempDir(join(root, 'f'), 'wal'), /EEXIST|ENOTDIR/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
