/**
 * Throttle, progress and tee against a real PostgreSQL 15 (pgbench scale 3,
 * a tablespace): the rate holds over a whole backup and the result verifies;
 * the server's size estimate and progress counts give a sane progress; one
 * source feeds two sinks, and a failing sink fails the run cleanly.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { run } from '../support/run';
import { useSampleServer } from '../support/sample-server';
import { ReplicationSource, TarFilesSink, type BackupEvent, type StartEvent } from '../../src/index';
import { RateLimiter } from '../../src/rate-limiter';
import { throttle } from '../../transforms/throttle';
import { progress, type ProgressInfo } from '../../transforms/progress';
import { tap } from '../../transforms/tap';
import { tee } from '../../sinks/tee';
import { createReporter } from '../../src/report/reporters';

const MiB = 1024 * 1024;
const pg = useSampleServer({ sampleData: { scale: 3 } });
const { scratch, source, directorySink, verify } = pg;

function discard(): Writable {
  return new Writable({ objectMode: true, highWaterMark: 16, write: (_e, _n, cb) => cb() });
}

test('throttle at 20 MiB/s: the rate over the whole run is within ±10%, and pg_verifybackup accepts the backup', async (t) => {
  const root = await scratch('pgbb-throttle-');
  const limit = 20 * MiB;
  const limiter = new RateLimiter(limit);
  let first = 0;
  let last = 0;
  let bytes = 0;
  let unused0 = 0;
  let unused1 = 0;
  const timing = tap((ev) => {
    if (ev.type !== 'data') return;
    const now = performance.now();
    // From the first data event on: the checkpoint before it does not count.
    if (!first) (first = now), (unused0 = limiter.unusedBytes);
    last = now;
    unused1 = limiter.unusedBytes;
    bytes += ev.chunk.length;
  });
  await pipeline(source(), throttle(limiter), timing, directorySink(root));
  const seconds = (last - first) / 1000;
  const rate = bytes / seconds;
  // On a loaded machine the sink (or the server) can fall below 20 MiB/s for
  // a while; the allowance the limiter then could not hand out is counted.
  const idleSeconds = (unused1 - unused0) / limit;
  const pacedRate = (bytes + (unused1 - unused0)) / seconds;
  t.diagnostic(
    `${(bytes / MiB).toFixed(1)} MiB in ${seconds.toFixed(2)} s = ${(rate / MiB).toFixed(2)} MiB/s (limit 20); ` +
      `limiter not the bottleneck for ${idleSeconds.toFixed(2)} s; bytes + unused allowance = ${(pacedRate / MiB).toFixed(2)} MiB/s`,
  );
  assert.ok(bytes > 60 * MiB, `a backup big enough to measure: ${bytes} bytes`);
  // The limiter itself: what passed plus what it could not hand out is the limit…
  assert.ok(Math.abs(pacedRate - limit) <= limit * 0.1, `the limiter handed out ${(pacedRate / MiB).toFixed(2)} MiB/s`);
  // …and the backup never ran faster than the limit.
  assert.ok(rate <= limit * 1.1, `measured ${(rate / MiB).toFixed(2)} MiB/s`);
  // Not slower either, unless the machine (not the limiter) held it back.
  if (idleSeconds <= seconds * 0.05) assert.ok(rate >= limit * 0.9, `measured ${(rate / MiB).toFixed(2)} MiB/s`);
  else t.diagnostic(`the sink or server set the pace for ${idleSeconds.toFixed(2)} s: the lower bound is not judged on this run`);
  await verify(join(root, 'data'));
});

test('progress with the server estimate: total known, final done within 3% of it, reports along the way, no password in --json', async (t) => {
  const password = 'pw-never-printed-42';
  const stderr: string[] = [];
  const reporter = createReporter({ json: true, stream: new Writable({ write: (c, _e, cb) => (stderr.push(String(c)), cb()) }) });
  const reports: ProgressInfo[] = [];
  let start: StartEvent | null = null;
  let serverCounts = 0;
  const p = progress({ intervalMs: 100, onProgress: (info) => (reports.push(info), reporter.progress(info)) });
  // Trust authentication: the password is never asked for, but it is in the conninfo.
  const src = new ReplicationSource({
    connection: { conninfo: `host=${pg.cluster.host} port=${pg.cluster.port} user=postgres password=${password}` },
    checkpoint: 'fast',
    progress: true,
    wal: 'none',
  });
  await pipeline(
    src,
    tap((ev) => {
      if (ev.type === 'start') (start = ev), reporter.start(ev);
      else if (ev.type === 'progress') serverCounts++;
      else if (ev.type === 'warning') reporter.warning(ev.code, ev.message);
    }),
    // Paced to at least half a second (scale 3 is over 50 MiB), so reports 100 ms apart fall
    // mid-way however fast the machine: unpaced, the backup once took 120 ms and had none.
    throttle(new RateLimiter(80 * MiB)),
    p,
    discard(),
  );
  reporter.close();
  const s = start as StartEvent | null;
  assert.ok(s && s.totalBytes !== null && s.totalBytes > 50 * MiB, `server estimate ${s?.totalBytes}`);
  const final = p.result!;
  t.diagnostic(`estimate ${s!.totalBytes} bytes, done ${final.done}, ${reports.length} reports, ${serverCounts} server progress messages`);
  assert.equal(final.phase, 'done');
  assert.ok(Math.abs(final.done - s!.totalBytes!) <= s!.totalBytes! * 0.03, `done ${final.done} vs estimate ${s!.totalBytes}`);
  assert.ok(serverCounts >= 2, 'the server sent its progress counts (one per archive at least)');
  assert.ok(reports.length >= 3, `${reports.length} reports`);
  for (let i = 1; i < reports.length; i++) assert.ok(reports[i].done >= reports[i - 1].done, 'done never goes backwards');
  assert.ok(reports.some((r) => r.phase === 'backup' && r.total !== null && r.done > 0 && r.done < r.total), 'a report mid-way');
  const lines = stderr.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines[0].event, 'start');
  assert.ok(lines.filter((l) => l.event === 'progress').length >= 3);
  assert.ok(!stderr.join('').includes(password));
});

test('progress with -X fetch: the WAL phase shows, and the total follows done past the estimate', async () => {
  const reports: ProgressInfo[] = [];
  await pipeline(source({ progress: true }), progress({ intervalMs: 0, onProgress: (r) => reports.push(r) }), discard());
  assert.ok(reports.some((r) => r.phase === 'wal'), 'a report in the WAL phase');
  for (const r of reports) assert.ok(r.total !== null && r.total >= r.done);
});

test('tee: a plain directory and tar files from one source; both complete and the directory verifies', async () => {
  const root = await scratch('pgbb-tee-');
  const a = directorySink(join(root, 'a'));
  const b = new TarFilesSink({ target: join(root, 'b'), sync: false });
  const sink = tee(a, b);
  await sink.ready();
  await pipeline(source(), sink);
  await verify(join(root, 'a', 'data'));
  assert.deepEqual((await fs.readdir(join(root, 'b'))).sort(), [`${pg.tsOid}.tar`, 'backup_manifest', 'base.tar'].sort());
  // Both got the same backup: the manifests are the server's one, byte for byte.
  assert.ok((await fs.readFile(join(root, 'a', 'data', 'backup_manifest'))).equals(await fs.readFile(join(root, 'b', 'backup_manifest'))));
  const names = (await run('tar', ['-tf', join(root, 'b', 'base.tar')])).stdout;
  assert.match(names, /^global\/pg_control$/m);
});

test('tee: a sink failing mid-way fails the run, the directory sink removes its target, the server session ends', async () => {
  const root = await scratch('pgbb-tee-fail-');
  const target = join(root, 'dir');
  const dir = directorySink(target);
  let n = 0;
  const failing = new Writable({
    objectMode: true,
    write(_ev: BackupEvent, _e, cb) {
      if (++n === 500) return cb(new Error('upload failed at event 500'));
      cb();
    },
  });
  const sink = tee(dir, failing);
  await sink.ready();
  assert.ok(existsSync(join(target, 'data')), 'the directory sink created its target');
  await assert.rejects(pipeline(source(), sink), /upload failed at event 500/);
  assert.ok(!existsSync(join(target, 'data')), 'target removed');
  assert.ok(!existsSync(join(target, 'ts')), 'tablespace target removed');
  // The replication connection was dropped, so the server aborted the backup.
  let walsenders = -1;
  for (let i = 0; i < 50 && walsenders !== 0; i++) {
    [{ n: walsenders }] = await pg.cluster.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'walsender'`);
    if (walsenders) await sleep(100);
  }
  assert.equal(walsenders, 0);
});
