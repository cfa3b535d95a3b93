/**
 * pgbb never waits forever on what it reads, and SIGINT/SIGTERM end it
 * within a second: the built CLI, run as a user would, on real directories
 * holding what used to hang it.
 *
 * - `verify DIR` where DIR/backup_label or DIR/backup_manifest is a FIFO
 *   (an ordinary open waits for a writer; SIGTERM then did nothing): one
 *   line naming the FIFO, exit 1, at once.
 * - `restore DIR` where DIR/PG_VERSION is a link to /dev/zero (read, it grew
 *   pgbb without end): refused as a link, the target not left behind.
 * - `verify -` and `restore -` with stdin a pipe nobody writes to, then
 *   SIGTERM, SIGINT or SIGHUP: exit 143 / 130 / 129 within a second.
 * - `verify -` / `restore -` spooling a pg_basebackup stream (no pgbb
 *   descriptor), stopped mid-stream: the spool is gone when pgbb has exited.
 *
 * The children run under `prlimit --data` (RLIMIT_DATA: the memory they may
 * write to) so that a regression reading /dev/zero fails the test instead of
 * filling the machine's memory, and are SIGKILLed after a few seconds so that
 * a hang fails it instead of stalling.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGBB_CLI } from '../support/pgbb';
import { encodeHeader } from '../../src/codec/tar/encode-header';
import { readdirSync, mkdirSync } from 'node:fs';
import { plant, releaseFifos, tinyPlainBackup, type Hostile } from '../support/hostile-files';

const root = mkdtempSync(join(tmpdir(), 'pgbb-signals-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  releaseFifos();
  rmSync(root, { recursive: true, force: true });
});

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** ms from spawn, or from the signal when one was sent */
  ms: number;
}

/** The CLI with stdin a pipe it is never sent anything on; killed after `killAfterMs`. */
function start(args: string[], killAfterMs = 5000, env?: NodeJS.ProcessEnv): { child: ChildProcess; ended: Promise<Ended>; mark: () => void } {
  const child = spawn('prlimit', ['--data=3000000000', process.execPath, PGBB_CLI, ...args], { stdio: ['pipe', 'ignore', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  children.add(child);
  let from = performance.now();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const ended = new Promise<Ended>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      children.delete(child);
      resolve({ code, signal, stderr, ms: performance.now() - from });
    });
  });
  return { child, ended, mark: () => (from = performance.now()) };
}

/** CPU ticks the process has used (utime + stime). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Waits until the child has started and sits idle (no CPU for 400 ms): it is blocked waiting for input. */
async function waitIdle(child: ChildProcess): Promise<void> {
  await sleep(500);
  let last = -1;
  let still = 0;
  for (let i = 0; i < 100 && still < 4; i++) {
    const now = cpuTicks(child.pid!);
    still = now === last ? still + 1 : 0;
    last = now;
    await sleep(100);
  }
}

const planted: Array<[string, string, Hostile, RegExp]> = [
  ['verify', 'backup_label', 'fifo', /^pgbb: error: backup_label ".*\/backup_label" is a FIFO, not a regular file\n$/],
  ['verify', 'backup_manifest', 'fifo', /^pgbb: error: backup_manifest ".*\/backup_manifest" is a FIFO, not a regular file\n$/],
  ['restore', 'PG_VERSION', 'dev-zero-link', /^pgbb: error: PG_VERSION ".*\/PG_VERSION" is a symbolic link: refusing to follow it\n$/],
  ['restore', 'backup_label', 'fifo', /^pgbb: error: backup_label ".*\/backup_label" is a FIFO, not a regular file\n$/],
];
for (const [command, rel, kind, line] of planted) {
  test(`pgbb ${command} of a backup whose ${rel} is ${kind === 'fifo' ? 'a FIFO' : 'a link to /dev/zero'}: one line naming it, exit 1, at once`, async () => {
    const dir = tinyPlainBackup(join(root, `${command}-${rel}-${kind}`));
    plant(join(dir, rel), kind);
    const target = join(root, `${command}-${rel}-${kind}-target`);
    const { ended } = start(command === 'verify' ? ['verify', dir] : ['restore', dir, '-D', target]);
    const r = await ended;
    assert.equal(r.signal, null, `ended by ${r.signal} (hung, killed after 5 s)`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, line);
    assert.ok(r.ms < 3000, `took ${r.ms.toFixed(0)} ms`);
    assert.ok(!existsSync(target), 'restore left no target behind');
  });
}

for (const [command, sig, code] of [
  ['verify', 'SIGTERM', 143],
  ['verify', 'SIGINT', 130],
  ['restore', 'SIGTERM', 143],
] as const) {
  test(`pgbb ${command} - waiting on a pipe nobody writes to: ${sig} ends it with ${code} within a second`, async () => {
    const target = join(root, `stdin-${command}-${sig}-target`);
    const { child, ended, mark } = start(command === 'verify' ? ['verify', '-'] : ['restore', '-', '-D', target]);
    await waitIdle(child);
    assert.equal(child.exitCode, null, 'still waiting on stdin before the signal');
    mark();
    child.kill(sig);
    const r = await ended;
    assert.equal(r.signal, null, `ended by ${r.signal} (${sig} did nothing, killed after 5 s)`);
    assert.equal(r.code, code);
    assert.ok(r.ms < 1000, `took ${r.ms.toFixed(0)} ms after ${sig}`);
    assert.equal(r.stderr, `pgbb: error: interrupted by ${sig}\n`);
    assert.ok(!existsSync(target), 'restore left no target behind');
  });
}

for (const [command, sig, code] of [
  ['verify', 'SIGTERM', 143],
  ['restore', 'SIGINT', 130],
  // A closed terminal or ssh session: the spool went with the default action's kill before.
  ['verify', 'SIGHUP', 129],
] as const) {
  test(`pgbb ${command} - spooling a pg_basebackup stream: ${sig} ends it with ${code} and the spool is gone`, async () => {
    const tmp = join(root, `spool-${command}-${sig}`);
    mkdirSync(tmp);
    const target = join(root, `spool-${command}-${sig}-target`);
    const { child, ended, mark } = start(command === 'verify' ? ['verify', '-'] : ['restore', '-', '-D', target], 5000, { TMPDIR: tmp });
    // pg_basebackup's first member, promising more than is sent: pgbb spools and waits for the rest.
    child.stdin!.write(encodeHeader({ name: 'backup_label', type: '0', size: 10_000_000, mode: 0o600, mtime: new Date() }));
    child.stdin!.write(Buffer.alloc(1_000_000, 0x78));
    for (let i = 0; i < 100 && readdirSync(tmp).length === 0; i++) await sleep(50);
    assert.equal(readdirSync(tmp).length, 1, 'spooling');
    await waitIdle(child);
    mark();
    child.kill(sig);
    const r = await ended;
    assert.equal(r.code, code, r.stderr);
    assert.ok(r.ms < 1000, `took ${r.ms.toFixed(0)} ms after ${sig}`);
    assert.deepEqual(readdirSync(tmp), [], 'no spool left');
    assert.ok(!existsSync(target), 'restore left no target behind');
  });
}
