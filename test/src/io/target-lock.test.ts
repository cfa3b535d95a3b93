/**
 * src/io/target-lock.ts: one lock file format for backup and refresh, an
 * atomic takeover of a dead holder's lock, and lock files that are not what
 * they should be (FIFO, symlink, huge) refused at once with one line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { LOCK_FILE, lockForRefresh } from '../../../src/io/target-lock';
import { processStartTime } from '../../../src/io/live-cluster';
import { lockTarget } from '../../../sinks/target-dir';
import { IoError, TargetLockedError } from '../../../src/errors';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await fs.rm(r, { recursive: true, force: true });
});

async function root(): Promise<string> {
  const r = await fs.mkdtemp(join(tmpdir(), 'pgbb-target-lock-'));
  roots.push(r);
  return r;
}

/** pid_max on Linux is at most 2^22: this pid cannot exist. */
const DEAD_PID = 2 ** 22 + 1;

/**
 * A racer: a separate node process that, for each directory read from stdin,
 * tries to take the refresh lock and answers `won` or `lost <code>` — and
 * keeps what it won, so a later racer of the same round cannot win fairly.
 */
const RACER = `
const { lockForRefresh } = require(process.argv[1]);
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (dir) => {
  lockForRefresh(dir).then(
    () => process.stdout.write('won\\n'),
    (err) => process.stdout.write('lost ' + (err.code || err.message) + '\\n'),
  );
});
`;

function startRacer(): { child: ChildProcessWithoutNullStreams; next(): Promise<string> } {
  const child = spawn(process.execPath, ['-e', RACER, join(__dirname, '../../../src/io/target-lock.js')], { stdio: 'pipe' });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  return { child, next: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))) };
}

test('8 processes racing for one stale lock, 200 rounds: exactly one wins every round', async () => {
  const r = await root();
  const racers = Array.from({ length: 8 }, startRacer);
  try {
    const counts: number[] = [];
    for (let round = 0; round < 200; round++) {
      const dir = join(r, `round-${round}`);
      await fs.mkdir(dir);
      // Both an older pgbb's lock (pid only) and today's (pid, start time, token).
      const stale = round % 2 ? `${DEAD_PID}\n` : `${DEAD_PID} 12345 ${'ab'.repeat(16)}\n`;
      await fs.writeFile(join(dir, LOCK_FILE), stale);
      for (const racer of racers) racer.child.stdin.write(`${dir}\n`);
      const answers = await Promise.all(racers.map((racer) => racer.next()));
      for (const a of answers) assert.match(a, /^(won|lost target_locked)$/);
      counts.push(answers.filter((a) => a === 'won').length);
      // The winner's lock is what is left, with no takeover or temporary file beside it.
      assert.deepEqual(await fs.readdir(dir), [LOCK_FILE]);
    }
    assert.deepEqual(counts.filter((c) => c !== 1), [], `rounds without exactly one winner (of ${counts.length})`);
  } finally {
    for (const racer of racers) racer.child.kill();
  }
});

test('a lock naming a live pid with another start time (a reused pid) is stale: refresh takes it over, backup says it is stale', async () => {
  const sleeper = spawn('sleep', ['30']);
  try {
    const start = processStartTime(sleeper.pid!);
    assert.match(String(start), /^\d+$/);
    const dir = await root();
    await fs.writeFile(join(dir, LOCK_FILE), `${sleeper.pid} ${Number(start) + 1} ${'cd'.repeat(16)}\n`);
    await assert.rejects(lockTarget(dir), /locked by another pgbb run \(pid \d+, no longer running: remove/);
    const lock = await lockForRefresh(dir);
    assert.match(await fs.readFile(join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} \\d+ [0-9a-f]{32}\n$`));
    await lock.release();
    assert.deepEqual(await fs.readdir(dir), []);
    // The same pid with its real start time is a live holder.
    await fs.writeFile(join(dir, LOCK_FILE), `${sleeper.pid} ${start} ${'cd'.repeat(16)}\n`);
    await assert.rejects(lockForRefresh(dir), new RegExp(`locked by another pgbb run \\(pid ${sleeper.pid}\\)$`));
  } finally {
    sleeper.kill();
  }
});

test('a FIFO, a symlink or a 1 GB file in the lock\'s place: one clear line at once, nothing followed or changed', async () => {
  const dir = await root();
  const lock = join(dir, LOCK_FILE);
  const outside = join(await root(), 'elsewhere');
  await fs.writeFile(outside, `${DEAD_PID}\n`);
  const cases: [string, () => Promise<void>, RegExp][] = [
    ['FIFO', async () => void spawnSync('mkfifo', [lock]), /^lock file ".*\.pgbb-lock" is a FIFO, not a regular file$/],
    ['symlink', () => fs.symlink(outside, lock), /^lock file ".*\.pgbb-lock" is a symbolic link: refusing to follow it$/],
    ['1 GB file', async () => {
      const fh = await fs.open(lock, 'w');
      await fh.truncate(1024 ** 3);
      await fh.close();
    }, /^lock file ".*\.pgbb-lock" is larger than 4096 bytes, the most it can hold: refusing to read it$/],
  ];
  for (const [what, make, message] of cases) {
    await make();
    for (const attempt of [() => lockForRefresh(dir), () => lockTarget(dir)]) {
      const began = Date.now();
      await assert.rejects(attempt(), (err: Error) => {
        assert.ok(err instanceof IoError, `${what}: ${err}`);
        assert.match(err.message, message);
        return true;
      });
      assert.ok(Date.now() - began < 2000, `${what}: refused quickly`);
    }
    assert.deepEqual(await fs.readdir(dir), [LOCK_FILE], `${what}: nothing else created`);
    await fs.unlink(lock);
  }
  assert.equal(await fs.readFile(outside, 'utf8'), `${DEAD_PID}\n`, 'the symlink\'s target untouched');
});

test('one format for both: a backup\'s lock keeps a refresh out and the other way round; a dead refresh\'s lock is taken over', async () => {
  const dir = await root();
  const backup = await lockTarget(dir);
  await assert.rejects(lockForRefresh(dir), TargetLockedError);
  await backup.release();
  const refresh = await lockForRefresh(dir);
  const content = await fs.readFile(join(dir, LOCK_FILE), 'utf8');
  assert.match(content, new RegExp(`^${process.pid} \\d+ [0-9a-f]{32}\n$`));
  await assert.rejects(lockTarget(dir), TargetLockedError);
  await refresh.release();
  assert.ok(!existsSync(join(dir, LOCK_FILE)));
  // Release leaves a lock that is no longer ours.
  const again = await lockForRefresh(dir);
  await fs.unlink(join(dir, LOCK_FILE));
  await fs.writeFile(join(dir, LOCK_FILE), `${DEAD_PID}\n`);
  await again.release();
  assert.equal(await fs.readFile(join(dir, LOCK_FILE), 'utf8'), `${DEAD_PID}\n`);
  // ... which, its pid being gone, the next refresh takes over.
  const third = await lockForRefresh(dir);
  await third.release();
  assert.deepEqual(await fs.readdir(dir), []);
});

test('runs killed while locking leave temporary and takeover files: the next winner removes those of dead runs only', async () => {
  const dir = await root();
  const deadTmp = `${LOCK_FILE}.${'11'.repeat(16)}.tmp`;
  const deadTakeover = `${LOCK_FILE}.takeover-${'22'.repeat(16)}`;
  const liveTmp = `${LOCK_FILE}.${'33'.repeat(16)}.tmp`;
  await fs.writeFile(join(dir, deadTmp), `${DEAD_PID} 1 ${'11'.repeat(16)}\n`);
  await fs.writeFile(join(dir, deadTakeover), `${DEAD_PID} 1 ${'22'.repeat(16)}\n`);
  await fs.writeFile(join(dir, liveTmp), `${process.pid} ${processStartTime(process.pid)} ${'33'.repeat(16)}\n`);
  const lock = await lockForRefresh(dir);
  assert.deepEqual((await fs.readdir(dir)).sort(), [LOCK_FILE, liveTmp].sort());
  await lock.release();
});
