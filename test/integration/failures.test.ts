/**
 * Failures against a real PostgreSQL 15 (pgbench scale 3 and a tablespace,
 * ~75 MB): whatever ends a backup — a signal, a server that stops answering,
 * stdout's reader going away, a second run on the same target, a full disk,
 * too many open files, a failing sink — pgbb prints one line naming the
 * cause, exits non-zero, removes what it created, and leaves the server with
 * no walsender and no slot. Plus: concurrent backups all verify.
 * (Server shutdown, authentication and max_wal_senders: failures-server.test.ts;
 * the --json code table: failures-codes.test.ts.)
 *
 * Times to failure are printed as test diagnostics (noisy: 2 shared cores).
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { useSampleServer } from '../support/sample-server';
import { run } from '../support/run';
import { mountSmallFs } from '../support/small-fs';
import { DEBIAN_PG15_BIN } from '../support/cluster';
import { backupStreaming, jsonError, reapChildren, serverClean, serverSide, spawnPgbb, waitFor } from '../support/failure-helpers';
import { runPipeline } from '../../src/pipeline';
import { LOCK_FILE } from '../../src/io/target-lock';
import type { BackupEvent } from '../../src/index';

const pg = useSampleServer({ sampleData: { scale: 3 } });
const { conn, scratch, verify } = pg;
after(reapChildren);

/** -D root/data -T <sample tablespace>=root/ts */
function targets(root: string): string[] {
  return ['-D', join(root, 'data'), '-T', `${pg.tsLocation}=${join(root, 'ts')}`];
}

function oneLine(stderr: string): void {
  assert.equal(stderr.split('\n').length, 2, `exactly one line: ${JSON.stringify(stderr)}`);
}

for (const { sig, json, exit, existing } of [
  { sig: 'SIGTERM', json: false, exit: 143, existing: false },
  { sig: 'SIGINT', json: true, exit: 130, existing: true },
] as const) {
  const what = existing ? 'the empty target emptied again' : 'the target removed';
  test(`${sig} during a throttled backup: exit ${exit}, "interrupted", ${what}, tablespace dir removed, walsenders and slot gone`, async (t) => {
    const root = await scratch('pgbb-fail-sig-');
    if (existing) await fs.mkdir(join(root, 'data'));
    const p = spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'fast', '-r', '2M', ...(json ? ['--json'] : [])]);
    await waitFor('the server to stream files', () => backupStreaming(pg.cluster));
    assert.equal((await serverSide(pg.cluster)).slots.length, 1, 'a temporary slot while it runs');
    const t0 = performance.now();
    p.child.kill(sig);
    const r = await p.done;
    const ms = Math.round(r.endedAt - t0);
    assert.equal(r.code, exit, r.stderr);
    if (json) assert.deepEqual(jsonError(r.stderr), { event: 'error', code: 'interrupted', message: `interrupted by ${sig}` });
    else assert.equal(r.stderr, `pgbb: error: interrupted by ${sig}\n`);
    if (existing) assert.deepEqual(await fs.readdir(join(root, 'data')), [], 'target it found empty is empty again');
    else assert.ok(!existsSync(join(root, 'data')), 'target removed');
    assert.ok(!existsSync(join(root, 'ts')), 'tablespace directory removed');
    const cleanMs = await serverClean(pg.cluster, 3000);
    t.diagnostic(`${sig}: pgbb exited ${ms} ms after the signal; server clean ${cleanMs} ms later`);
  });
}

test('SIGINT while the server waits for a spread checkpoint: the cancel request ends the walsender at once', async (t) => {
  // Dirty most of shared_buffers so that a spread checkpoint takes minutes.
  await pg.cluster.query('UPDATE pgbench_accounts SET abalance = abalance WHERE aid % 10 = 0');
  const root = await scratch('pgbb-fail-ckpt-');
  const p = spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'spread']);
  const waiting = await waitFor('the walsender to wait for the checkpoint', async () =>
    (await serverSide(pg.cluster)).walsenders.find((w) => w.waitEvent === 'CheckpointDone' || w.waitEvent === 'CheckpointStart'),
  );
  const t0 = performance.now();
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.stderr, 'pgbb: error: interrupted by SIGINT\n');
  // Without the cancel request the walsender would wait for the whole checkpoint.
  const cleanMs = await serverClean(pg.cluster, 3000);
  assert.ok(!existsSync(join(root, 'data')));
  t.diagnostic(`walsender ${waiting.pid} (${waiting.waitEvent}): pgbb exited ${Math.round(r.endedAt - t0)} ms after SIGINT, server clean ${cleanMs} ms later`);
  await pg.cluster.query('CHECKPOINT'); // finish it now, for the tests that follow
});

for (const wal of ['stream', 'fetch'] as const) {
  test(`-X ${wal}: a server that stops answering (walsenders SIGSTOPped mid-backup) is given up after --timeout, one line, nothing left`, async (t) => {
    const root = await scratch('pgbb-fail-stop-');
    const p = spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'fast', '-r', '4M', '-X', wal, '--timeout', '2', '--json']);
    await waitFor('the server to stream files', () => backupStreaming(pg.cluster));
    const pids = (await serverSide(pg.cluster)).walsenders.map((w) => w.pid);
    assert.equal(pids.length, wal === 'stream' ? 2 : 1);
    const t0 = performance.now();
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    let r;
    try {
      r = await p.done;
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    const ms = Math.round(r.endedAt - t0);
    assert.equal(r.code, 1, r.stderr);
    const e = jsonError(r.stderr);
    assert.equal(e.code, 'connection');
    assert.match(e.message, /no response from server at "127\.0\.0\.1:\d+" for \d+ s \(limit 2 s, --timeout\)/);
    // 2 s of silence plus the watchdog's tick (0.5 s), after reading (throttled) what the
    // socket buffers still held when the server stopped.
    assert.ok(ms < 6000, `gave up after ${ms} ms`);
    assert.ok(!existsSync(join(root, 'data')) && !existsSync(join(root, 'ts')), 'target and tablespace dir removed');
    const cleanMs = await serverClean(pg.cluster, 10_000);
    t.diagnostic(`-X ${wal}: gave up ${ms} ms after SIGSTOP; server clean ${cleanMs} ms after SIGCONT`);
  });
}

test('a server that accepts no connections (postmaster SIGSTOPped): connecting gives up after --timeout; SIGINT ends the wait at once', async (t) => {
  const root = await scratch('pgbb-fail-connect-');
  const postmaster = pg.cluster.pid!;
  process.kill(postmaster, 'SIGSTOP');
  let r1, r2, t1;
  const t0 = performance.now();
  try {
    r1 = await spawnPgbb(['backup', ...conn(), ...targets(root), '--timeout', '2', '--json']).done;
    const p = spawnPgbb(['backup', ...conn(), ...targets(root)]);
    await new Promise((res) => setTimeout(res, 1000)); // connecting by now
    t1 = performance.now();
    p.child.kill('SIGINT');
    r2 = await p.done;
  } finally {
    process.kill(postmaster, 'SIGCONT');
  }
  const ms1 = Math.round(r1.endedAt - t0);
  assert.equal(r1.code, 1, r1.stderr);
  assert.deepEqual(jsonError(r1.stderr), {
    event: 'error',
    code: 'connection',
    message: `connection to server at "127.0.0.1:${pg.cluster.port}" failed: timeout expired after 2 s`,
  });
  assert.ok(ms1 < 5000, `gave up after ${ms1} ms`);
  const ms2 = Math.round(r2.endedAt - t1);
  assert.equal(r2.code, 130, r2.stderr);
  assert.equal(r2.stderr, 'pgbb: error: interrupted by SIGINT\n');
  assert.ok(ms2 < 2000, `SIGINT took ${ms2} ms`);
  assert.ok(!existsSync(join(root, 'data')));
  await serverClean(pg.cluster, 5000);
  t.diagnostic(`connect timeout: failed ${ms1} ms after start (incl. node start-up); SIGINT while connecting: exited in ${ms2} ms`);
});

test('a healthy but idle server is not taken for a dead one: --timeout 2 with a backup throttled to last longer', async (t) => {
  const root = await scratch('pgbb-fail-idle-');
  const t0 = performance.now();
  const r = await spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'fast', '-r', '12M', '--timeout', '2']).done;
  const ms = Math.round(r.endedAt - t0);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(ms > 4000, `the backup took ${ms} ms, longer than the timeout`);
  await verify(join(root, 'data'));
  assert.ok(!existsSync(join(root, 'data', LOCK_FILE)), 'no lock file in a finished backup');
  t.diagnostic(`throttled backup with --timeout 2 took ${ms} ms`);
});

test('the reader of stdout goes away (pgbb backup -D - | head -c 1000): exit 1, "broken pipe", the server ends its side', async (t) => {
  const p = spawnPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast'], { stdout: 'keep' });
  let got = 0;
  const t0 = await new Promise<number>((resolve) => {
    p.child.stdout!.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 1000) {
        p.child.stdout!.destroy(); // as head does: read a little, close the pipe
        resolve(performance.now());
      }
    });
  });
  const r = await p.done;
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, 'pgbb: error: could not write to standard output: broken pipe (the reader went away)\n');
  const cleanMs = await serverClean(pg.cluster, 3000);
  t.diagnostic(`pgbb exited ${Math.round(r.endedAt - t0)} ms after the pipe closed; server clean ${cleanMs} ms later`);
});

test('two runs aimed at one target: the second is refused (target_locked) at once, the first completes and verifies', async () => {
  const root = await scratch('pgbb-fail-lock-');
  const first = spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'fast', '-r', '16M']);
  await waitFor('the first run to lock the target', async () => existsSync(join(root, 'data', LOCK_FILE)));
  const second = await spawnPgbb(['backup', ...conn(), '-D', join(root, 'data'), '-T', `${pg.tsLocation}=${join(root, 'ts2')}`, '--json']).done;
  assert.equal(second.code, 1);
  const e = jsonError(second.stderr);
  assert.equal(e.code, 'target_locked');
  assert.match(e.message, new RegExp(`^directory ".*/data" is locked by another pgbb run \\(pid ${first.child.pid}\\)$`));
  assert.ok(!existsSync(join(root, 'ts2')), 'the refused run created nothing');
  // Once the first is writing files the lock is still there, and the second is refused the same way.
  await waitFor('files in the target', async () => existsSync(join(root, 'data', 'PG_VERSION')));
  const third = await spawnPgbb(['backup', ...conn(), '-D', join(root, 'data'), '--json']).done;
  assert.equal(jsonError(third.stderr).code, 'target_locked');
  const r = await first.done;
  assert.equal(r.code, 0, r.stderr);
  await verify(join(root, 'data'));
  assert.ok(!existsSync(join(root, 'data', LOCK_FILE)));
});

test('two runs started together on one missing target: exactly one gets it, and its backup verifies', async () => {
  const root = await scratch('pgbb-fail-race-');
  const target = join(root, 'data');
  const runs = await Promise.all(
    ['a', 'b'].map((n) => spawnPgbb(['backup', ...conn(), '-D', target, '-T', `${pg.tsLocation}=${join(root, `ts-${n}`)}`, '-c', 'fast', '--json']).done),
  );
  const ok = runs.filter((r) => r.code === 0);
  const refused = runs.filter((r) => r.code !== 0);
  assert.equal(ok.length, 1, runs.map((r) => r.stderr).join('\n'));
  assert.ok(['target_locked', 'target_not_empty'].includes(jsonError(refused[0].stderr).code), refused[0].stderr);
  await verify(target);
});

test('a non-empty target or -T directory is refused before the server is contacted, and left untouched', async () => {
  const root = await scratch('pgbb-fail-nonempty-');
  const full = join(root, 'full');
  await fs.mkdir(full);
  await fs.writeFile(join(full, 'keep.txt'), 'precious');
  const before = (await fs.stat(full)).mtimeMs;
  // A listener that counts connections: there must be none.
  let connections = 0;
  const srv = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const d = ['-d', `host=127.0.0.1 port=${port} user=postgres`];
    const r1 = await spawnPgbb(['backup', ...d, '-D', full]).done;
    assert.equal(r1.code, 1);
    assert.equal(r1.stderr, `pgbb: error: directory "${full}" exists but is not empty\n`);
    const r2 = await spawnPgbb(['backup', ...d, '-D', join(root, 'data'), '-T', `/srv/ts=${full}`, '--json']).done;
    assert.equal(r2.code, 1);
    assert.deepEqual(jsonError(r2.stderr), { event: 'error', code: 'target_not_empty', message: `directory "${full}" exists but is not empty` });
    assert.ok(!existsSync(join(root, 'data')), 'the main target was not created');
    assert.equal(connections, 0, 'no connection attempt');
  } finally {
    srv.close();
  }
  assert.deepEqual(await fs.readdir(full), ['keep.txt']);
  assert.equal((await fs.stat(full)).mtimeMs, before);
});

test('disk full (an 8 MB filesystem): one line "could not write …: no space left on device", target emptied, nothing left on the server', async (t) => {
  const root = await scratch('pgbb-fail-enospc-');
  const mnt = join(root, 'mnt');
  await fs.mkdir(mnt);
  // A tmpfs, else a loop-mounted ext2 image; neither possible fails the test (never a skip).
  const small = await mountSmallFs(mnt, 8);
  t.diagnostic(`filled: an 8 MiB ${small.kind}`);
  try {
    for (const format of ['plain', 'tar'] as const) {
      const target = join(mnt, format);
      const args = format === 'plain' ? ['-D', target, '-T', `${pg.tsLocation}=${join(mnt, 'ts')}`] : ['-D', target, '-F', 'tar'];
      const t0 = performance.now();
      const r = await spawnPgbb(['backup', ...conn(), ...args, '-c', 'fast']).done;
      assert.equal(r.code, 1, r.stderr);
      oneLine(r.stderr);
      // Streamed WAL is refused a segment the filesystem has no room for, before it is written (src/wal/spool-place.ts).
      assert.match(r.stderr, new RegExp(`^pgbb: error: (could not (write to|create) file "${mnt}/.*": no space left on device|no room for streamed WAL in "${mnt}/.*": \\d+ bytes free, the next segment needs \\d+)\\n$`));
      assert.deepEqual(await fs.readdir(mnt), [], 'everything pgbb created is gone');
      const cleanMs = await serverClean(pg.cluster, 3000);
      t.diagnostic(`${format}: failed after ${Math.round(r.endedAt - t0)} ms; server clean ${cleanMs} ms later`);
    }
    // --json: the code scripts see.
    const r = await spawnPgbb(['backup', ...conn(), '-D', join(mnt, 'json'), '-F', 'tar', '-c', 'fast', '--json']).done;
    assert.equal(jsonError(r.stderr).code, 'io');
  } finally {
    await small.unmount();
  }
});

test('too many open files (ulimit -n): one line naming it, target removed, nothing left on the server', async (t) => {
  // Node itself needs some descriptors, and how many varies: start low and
  // raise the limit until pgbb gets going (its --json start event) and then
  // runs out.
  let seen = false;
  for (let n = 18; n <= 40 && !seen; n += 2) {
    const root = await scratch('pgbb-fail-emfile-');
    const r = await spawnPgbb(['backup', ...conn(), ...targets(root), '-c', 'fast', '-N', '--json'], { shellPrefix: `ulimit -n ${n}` }).done;
    if (!r.stderr.startsWith('{')) continue; // Node could not even load pgbb
    assert.notEqual(r.code, 0, `ulimit -n ${n}: the backup succeeded before running out; lower the start`);
    const e = jsonError(r.stderr);
    assert.match(e.message, /too many open files/);
    assert.ok(['io', 'connection'].includes(e.code), `ulimit -n ${n}: ${e.code}: ${e.message}`);
    assert.ok(!existsSync(join(root, 'data')) && !existsSync(join(root, 'ts')));
    await serverClean(pg.cluster, 3000);
    t.diagnostic(`ulimit -n ${n}: ${e.code}: ${e.message}`);
    seen = true;
  }
  assert.ok(seen, 'pgbb never started under the limits tried');
});

test('library: a sink that fails mid-backup rejects the pipeline with its error; both connections close, no slot', async () => {
  const source = pg.source({ wal: 'stream' });
  let events = 0;
  const failing = new Writable({
    objectMode: true,
    write(ev: BackupEvent, _e, cb) {
      if (ev.type === 'data' && ++events === 200) return cb(new Error('sink broke'));
      cb();
    },
  });
  await assert.rejects(runPipeline(source, [], failing), /^Error: sink broke$/);
  await serverClean(pg.cluster, 3000);
});

test('3 pgbb backups and a pg_basebackup of one server at the same time: each passes pg_verifybackup', async (t) => {
  const root = await scratch('pgbb-fail-concurrent-');
  const t0 = performance.now();
  const pgbbRuns = [1, 2, 3].map((i) => spawnPgbb(['backup', ...conn(), ...targets(join(root, `p${i}`)), '-c', 'fast']).done);
  const basebackup = run(join(DEBIAN_PG15_BIN, 'pg_basebackup'), [
    '-d', `host=${pg.cluster.host} port=${pg.cluster.port} user=postgres`,
    '-D', join(root, 'b', 'data'), '-T', `${pg.tsLocation}=${join(root, 'b', 'ts')}`, '-c', 'fast',
  ]);
  const results = await Promise.all(pgbbRuns);
  await basebackup;
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  for (const d of ['p1', 'p2', 'p3', 'b']) await verify(join(root, d, 'data'));
  assert.equal((await serverSide(pg.cluster)).slots.length, 0);
  t.diagnostic(`4 concurrent backups in ${Math.round(performance.now() - t0)} ms`);
});
