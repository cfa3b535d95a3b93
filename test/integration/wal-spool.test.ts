/**
 * Where streamed WAL (-X stream) is written, against a real PostgreSQL 15
 * with pgbench writing WAL during each backup:
 *   plain    straight into <target>/pg_wal/ (`.partial` until complete),
 *            nothing in $TMPDIR, each WAL byte written once
 *   refresh  the same, into DIR's pg_wal/
 *   tar      a spool inside the target, gone before the manifest
 *   -D -     a spool in --wal-spool DIR (default: on disk), gone at the end
 * and what is left after a failure: a library user who exits the moment
 * the pipeline rejects, and a SIGKILLed pgbb.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { PGBB_CLI, runPgbb, type PgbbRun } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { watchNames } from '../support/watch-names';

const pg = useSampleServer({ sampleData: false, setup: (cluster) => cluster.pgbench(['-i', '-q', '-s', '1', 'postgres']) });
const { conn, scratch, verify } = pg;

/** pgbench writing WAL (full-page writes after the backup's checkpoint) until stopped. */
function load(seconds: number): Promise<string> {
  return pg.cluster.pgbench(['-c', '2', '-R', '40', '-T', String(seconds), 'postgres']);
}

/** Every name that appeared under `dir` (one level, and one below) while `until` was pending. */
const watch = <T>(dir: string, until: Promise<T>) => watchNames(dir, until, 20);

const ok = (r: PgbbRun) => assert.equal(r.code, 0, r.stderr);

test('plain and refresh: WAL goes straight into pg_wal/ as .partial, renamed when complete; nothing in $TMPDIR; pg_verifybackup accepts it', async () => {
  const root = await scratch('pgbb-walspool-plain-');
  const tmp = join(root, 'tmp');
  await fs.mkdir(tmp);
  const target = join(root, 'data');
  const env = { TMPDIR: tmp };
  const writing = load(12);
  // -r: long enough to watch segments fill.
  const { result, seen } = await watch(join(target, 'pg_wal'), watch(tmp, runPgbb(['backup', ...conn(), '-D', target, '-c', 'fast', '-r', '4096', '-N'], { env })));
  ok(result.result);
  assert.deepEqual([...result.seen], [], `nothing in $TMPDIR: ${[...result.seen]}`);
  assert.ok([...seen].some((n) => /^[0-9A-F]{24}\.partial$/.test(n)), `a segment filled as .partial in the target: ${[...seen]}`);
  const names = await fs.readdir(join(target, 'pg_wal'));
  assert.ok(!names.some((n) => n.endsWith('.partial')), `no .partial left: ${names}`);
  await verify(target);

  const again = await watch(tmp, runPgbb(['refresh', ...conn(), '-D', target, '-c', 'fast', '-N'], { env }));
  ok(again.result);
  assert.deepEqual([...again.seen], [], 'refresh: nothing in $TMPDIR');
  assert.ok(!(await fs.readdir(join(target, 'pg_wal'))).some((n) => n.endsWith('.partial')));
  await verify(target);
  await writing;
});

test('tar: the spool is a directory inside the target, gone before backup_manifest; -D -: in --wal-spool DIR, gone at the end', async () => {
  const root = await scratch('pgbb-walspool-tar-');
  const tmp = join(root, 'tmp');
  await fs.mkdir(tmp);
  const env = { TMPDIR: tmp };
  const writing = load(10);
  const target = join(root, 'tar');
  const tar = await watch(tmp, watch(target, runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '-c', 'fast', '-r', '8192', '-N'], { env })));
  ok(tar.result.result);
  assert.deepEqual([...tar.seen], [], 'nothing in $TMPDIR');
  assert.ok([...tar.result.seen].some((n) => /^pgbb-wal-[\w.-]+\/[0-9A-F]{24}(\.partial)?$/.test(n)), `spooled inside the target: ${[...tar.result.seen]}`);
  assert.deepEqual((await fs.readdir(target)).sort(), ['backup_manifest', 'base.tar', 'pg_wal.tar']);

  const spool = join(root, 'spool');
  const out = join(root, 'stream.tar');
  const std = await watch(tmp, watch(spool, runPgbb(['backup', ...conn(), '-D', '-', '--wal-spool', spool, '-c', 'fast', '-r', '8192'], { env, stdoutFile: out })));
  ok(std.result.result);
  assert.deepEqual([...std.seen], [], 'nothing in $TMPDIR');
  assert.ok([...std.result.seen].some((n) => /^pgbb-wal-[\w.-]+\/[0-9A-F]{24}(\.partial)?$/.test(n)), `spooled in --wal-spool: ${[...std.result.seen]}`);
  assert.deepEqual(await fs.readdir(spool), [], 'spool removed');
  await writing;

  const bad = await runPgbb(['backup', ...conn(), '-D', join(root, 'p'), '--wal-spool', spool]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'pgbb: error: --wal-spool is only for -X stream to -D - or s3:// (other targets keep their WAL inside the target)\n');
});

for (const how of ['runPipeline', 'pipeline'] as const) {
  for (const where of ['base', 'wal'] as const) {
    test(`library, ${how}: a sink failing in the ${where} archive, process.exit() at the rejection: nothing left in the spool directory`, async () => {
      const root = await scratch('pgbb-walspool-exit-');
      const spool = join(root, 'spool');
      const writing = load(4);
      const child = spawn(process.execPath, [
        join(__dirname, '..', 'support', 'wal-exit-on-reject.js'),
        JSON.stringify({ host: pg.cluster.host, port: pg.cluster.port, user: 'postgres' }),
        spool,
        how,
        where,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((res) => child.on('close', res));
      assert.equal(code, 3, stderr);
      assert.deepEqual(await fs.readdir(spool).catch(() => []), [], 'no spool left behind');
      await writing;
    });
  }
}

test('SIGKILL mid-backup: the spool is inside the target (plain: pg_wal/*.partial; tar: pgbb-wal-*), never in $TMPDIR; the next run refuses the target', async () => {
  const root = await scratch('pgbb-walspool-kill-');
  const tmp = join(root, 'tmp');
  await fs.mkdir(tmp);
  const writing = load(10);
  for (const format of ['plain', 'tar']) {
    const target = join(root, format);
    const child = spawn(process.execPath, [PGBB_CLI, 'backup', ...conn(), '-D', target, '-F', format, '-c', 'fast', '-r', '2048', '-N'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: 'ignore',
    });
    const closed = new Promise((res) => child.on('close', res));
    // Killed once a first segment is being written.
    const spoolOf = async () => {
      if (format === 'plain') return (await fs.readdir(join(target, 'pg_wal')).catch(() => [])).filter((n) => n.endsWith('.partial'));
      return (await fs.readdir(target).catch(() => [])).filter((n) => n.startsWith('pgbb-wal-'));
    };
    for (const until = Date.now() + 20_000; (await spoolOf()).length === 0 && Date.now() < until; ) await sleep(20);
    child.kill('SIGKILL');
    await closed;
    assert.equal((await spoolOf()).length, 1, `${format}: the spool is in the target`);
    assert.deepEqual(await fs.readdir(tmp), [], `${format}: nothing in $TMPDIR`);
    const next = await runPgbb(['backup', ...conn(), '-D', target, '-F', format, '-c', 'fast']);
    assert.equal(next.code, 1, next.stderr);
    assert.match(next.stderr, /^pgbb: error: .*(not empty|locked)/);
  }
  await writing;
  assert.ok(existsSync(root));
});

test('SIGKILL during -D -: the spool left in $TMPDIR is removed by the next run that spools there, which completes and leaves nothing', async () => {
  const root = await scratch('pgbb-walspool-kill-stdout-');
  // Not in the scratch directory, which the server's OS user owns: pgbb sweeps only where no other user can rename entries.
  const tmp = await fs.mkdtemp(join(tmpdir(), 'pgbb-walspool-sweep-'));
  const env = { ...process.env, TMPDIR: tmp };
  const writing = load(6);
  try {
    await killedThenSwept(tmp, env, root);
  } finally {
    await writing;
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

async function killedThenSwept(tmp: string, env: NodeJS.ProcessEnv, root: string): Promise<void> {
  // --wal-spool too: were $TMPDIR memory-backed, pgbb would spool in /var/tmp.
  const child = spawn(process.execPath, [PGBB_CLI, 'backup', ...conn(), '-D', '-', '--wal-spool', tmp, '-c', 'fast', '-r', '2048'], { env, stdio: 'ignore' });
  const closed = new Promise((res) => child.on('close', res));
  const spools = async () => (await fs.readdir(tmp)).filter((n) => n.startsWith('pgbb-wal-'));
  const segments = async () => (await Promise.all((await spools()).map((s) => fs.readdir(join(tmp, s))))).flat().filter((n) => /^[0-9A-F]{24}/.test(n));
  for (const until = Date.now() + 20_000; (await segments()).length === 0 && Date.now() < until; ) await sleep(20);
  child.kill('SIGKILL');
  await closed;
  const left = await spools();
  assert.equal(left.length, 1, `the killed run's spool is left: ${left}`);
  assert.ok((await segments()).length > 0);
  // Another user's look-alike (here: a link) is not touched.
  const link = join(tmp, left[0].replace(/-\w{6}$/, '-link00'));
  await fs.symlink(root, link);
  const out = join(root, 'backup.tar');
  const next = await runPgbb(['backup', ...conn(), '-D', '-', '--wal-spool', tmp, '-c', 'fast'], { env, stdoutTo: out });
  ok(next);
  assert.deepEqual(await fs.readdir(tmp), [link.slice(tmp.length + 1)], 'the killed run\'s spool and the new run\'s are gone; the link stays');
  assert.equal(await fs.readlink(link), root);
  assert.ok((await fs.stat(out)).size > 1_000_000);
}
