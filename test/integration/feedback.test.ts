/**
 * What a DBA sees while pgbb works (issue 15, "say what is happening"),
 * against a real PostgreSQL 15: the checkpoint wait is said at once, -v
 * prints pg_basebackup -v's steps, every JSON line has a timestamp, the
 * steps come in order, the progress total does not jump by the WAL at the
 * end (WAL is counted apart), the result says what it covers, and a refresh
 * ends with a line saying what it wrote of what.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { fillSampleData, type Cluster } from '../support/cluster';
import { connArgs, testScratch } from '../support/scratch';
import { runPgbb } from '../support/pgbb';

const scratch = testScratch();
let cluster: Cluster;

before(async () => {
  cluster = await scratch.cluster();
  await fillSampleData(cluster, { scale: 1, tablespace: false });
});

test('-P says it waits for the checkpoint before anything else; -v prints the steps as pg_basebackup -v does', async () => {
  const dir = join(await scratch.dir('pgbb-feedback-'), 'b');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-P', '-v', '-N']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines[0], 'pgbb: initiating base backup, waiting for checkpoint to complete (fast)');
  const started = lines.findIndex((l) => /^pgbb: checkpoint completed; write-ahead log start point: [0-9A-F]+\/[0-9A-F]+ on timeline 1$/.test(l));
  const ended = lines.findIndex((l) => /^pgbb: write-ahead log end point: [0-9A-F]+\/[0-9A-F]+$/.test(l));
  const done = lines.indexOf('pgbb: base backup completed');
  assert.ok(started > 0 && ended > started && done > ended, r.stderr);
  assert.match(r.stderr, /\+ [\d.]+ MB WAL, |, \+ [\d.]+ MB WAL$/m, 'the WAL is shown apart');
});

test('--json: timestamps on every line, steps in order, a total that does not jump, a result that says what it covers', async () => {
  const dir = join(await scratch.dir('pgbb-feedback-'), 'b');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-c', 'fast', '--json', '-N']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const e of events) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(e));
  const times = events.map((e) => Date.parse(e.time));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'in time order');
  assert.deepEqual(events.filter((e) => e.event === 'step').map((e) => e.code), ['checkpoint', 'started', 'ended', 'done']);
  assert.equal(events[0].event, 'step', 'the checkpoint wait is the first thing said');

  const start = events.find((e) => e.event === 'start');
  const progress = events.filter((e) => e.event === 'progress');
  const last = progress[progress.length - 1];
  assert.equal(last.phase, 'done');
  // The total is the server's estimate until the data outgrows it (files grew while being sent): then it follows done, never jumping.
  for (const p of progress.slice(0, -1)) assert.equal(p.total, Math.max(start.totalBytes, p.done), `the total stays the estimate: ${JSON.stringify(p)}`);
  assert.equal(last.total, last.done, 'the last report is whole');
  assert.ok(last.done <= start.totalBytes * 1.03, `done ${last.done} vs the estimate ${start.totalBytes}: WAL is not in it`);
  assert.ok(last.wal >= 16 * 1024 * 1024, `WAL counted apart: ${last.wal}`);

  const result = events.find((e) => e.event === 'result');
  assert.equal(result.target, dir);
  assert.equal(result.format, 'plain');
  assert.equal(result.compression, 'none');
  assert.equal(result.walBytes, last.wal, 'the result and the last progress count the same WAL');
  assert.ok(result.bytes > result.walBytes);
  assert.ok(result.checkpointSeconds >= 0 && result.checkpointSeconds <= result.seconds);
});

test('refresh says, without -v, what it wrote of what and what crossed the network', async () => {
  const dir = join(await scratch.dir('pgbb-feedback-'), 'b');
  assert.equal((await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N'])).code, 0);
  await cluster.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100');
  const r = await runPgbb(['refresh', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N', '--no-incremental']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /^pgbb: refresh complete \(full\): wrote [\d.]+ (kB|MB) of [\d.]+ MB \([\d.]+%\); files \d+ added, \d+ changed, \d+ removed \(\d+ unchanged\); chunks \d+ changed, \d+ unchanged; received [\d.]+ MB; [\d.]+ s; start \S+ end \S+ on timeline 1$/m,
  );
});

test('refresh -P: progress lines say what was written beside what was received; --json progress carries written', async () => {
  const dir = join(await scratch.dir('pgbb-feedback-p-'), 'b');
  assert.equal((await runPgbb(['backup', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N'])).code, 0);
  await cluster.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100');
  const r = await runPgbb(['refresh', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N', '--no-incremental', '-P']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => / done in /.test(l));
  assert.equal(lines.length, 1, r.stderr);
  const m = /^pgbb: ([\d.]+) MB of [\d.]+ MB \(\d+%\), .* done in \S+, (?:\+ [\d.]+ \S+ WAL, )?wrote ([\d.]+) (kB|MB|bytes)$/.exec(lines[0]);
  assert.ok(m, lines[0]);
  const written = Number(m[2]) * (m[3] === 'MB' ? 1024 * 1024 : m[3] === 'kB' ? 1024 : 1);
  assert.ok(written > 0 && written < Number(m[1]) * 1024 * 1024, `wrote ${written} of ${m[1]} MB received`);
  await cluster.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100');
  const j = await runPgbb(['refresh', ...connArgs(cluster), '-D', dir, '-c', 'fast', '-N', '--no-incremental', '--json']);
  assert.equal(j.code, 0, j.stderr);
  const progress = j.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'progress');
  assert.ok(progress.length > 0 && progress.every((e) => typeof e.written === 'number' && e.written <= e.done + (e.wal ?? 0)), JSON.stringify(progress.slice(-2)));
});
