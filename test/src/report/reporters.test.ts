import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createReporter, JsonReporter, plainReporter, ProgressReporter } from '../../../src/report/reporters';
import { describeProgress, formatBytes, formatDuration } from '../../../src/report/progress-reporter';
import { ChecksumError, InterruptedError } from '../../../src/errors';
import { ReplicationSource } from '../../../src/sources/replication-source';
import { progress } from '../../../transforms/progress';
import type { StartEvent } from '../../../src/events';
import { freePort } from '../../support/cluster';

class Capture extends Writable {
  text = '';
  isTTY?: boolean;
  columns = 120;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
  lines(): string[] {
    return this.text.split('\n').filter(Boolean);
  }
}

const START: StartEvent = {
  type: 'start', serverVersion: 150018, systemIdentifier: '7412345678901234567', timeline: 1, startLsn: '0/2000028',
  tablespaces: [{ oid: '16384', location: '/ts', size: 1024 }, { oid: null, location: '', size: 4096 }],
  walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'nightly', totalBytes: 5120,
};

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('JSON reporter: one parseable object per line, with the documented fields', () => {
  const out = new Capture();
  const r = createReporter({ json: true, progress: true, stream: out });
  assert.ok(r instanceof JsonReporter, '--json wins over -P');
  r.start(START);
  r.progress({ done: 1000, total: 5120, rateBytesPerSec: 2000.4, etaSeconds: 2.0666, elapsedSeconds: 0.5, phase: 'backup', currentFile: 'base/1/1' });
  r.warning('checksum', 'checksum verification failed in file "base/1/2", block 3');
  r.result({ startLsn: '0/2000028', endLsn: '0/2000100', timeline: 1, bytes: 5000, files: 12, seconds: 1.23456 });
  r.error(new ChecksumError('checksum verification failure during base backup'));
  r.error(new InterruptedError('interrupted by SIGINT'));
  r.error(new Error('boom'));
  r.step!({ code: 'checkpoint', message: 'initiating base backup, waiting for checkpoint to complete' });
  r.result({
    startLsn: '0/2000028', endLsn: '0/2000100', timeline: 1, bytes: 5000, files: 12, seconds: 2, checkpointSeconds: 0.5004,
    target: '/b', format: 'tar', compression: 'none', walBytes: 16,
  });
  r.close();
  const raw = out.lines().map((l) => JSON.parse(l));
  // Every line carries its time (ISO 8601, UTC, now); the rest is compared without it.
  for (const l of raw) {
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(l.time) - Date.now()) < 60_000);
  }
  const lines = raw.map(({ time: _t, ...rest }) => rest);
  assert.deepEqual(lines[7], { event: 'step', code: 'checkpoint', message: 'initiating base backup, waiting for checkpoint to complete' });
  assert.deepEqual(lines[8], {
    event: 'result', startLsn: '0/2000028', endLsn: '0/2000100', timeline: 1, bytes: 5000, files: 12, seconds: 2, checkpointSeconds: 0.5,
    target: '/b', format: 'tar', compression: 'none', walBytes: 16,
  });
  assert.deepEqual(lines[0], {
    event: 'start', serverVersion: 150018, systemIdentifier: '7412345678901234567', timeline: 1, startLsn: '0/2000028',
    label: 'nightly', totalBytes: 5120, tablespaces: 1,
  });
  assert.deepEqual(lines[1], { event: 'progress', phase: 'backup', done: 1000, total: 5120, rate: 2000, eta: 2.1, elapsed: 0.5 });
  assert.deepEqual(lines[2], { event: 'warning', code: 'checksum', message: 'checksum verification failed in file "base/1/2", block 3' });
  assert.deepEqual(lines[3], { event: 'result', startLsn: '0/2000028', endLsn: '0/2000100', timeline: 1, bytes: 5000, files: 12, seconds: 1.235 });
  assert.deepEqual(lines[4], { event: 'error', code: 'checksum', message: 'checksum verification failure during base backup' });
  assert.equal(lines[5].code, 'interrupted');
  assert.equal(lines[6].code, 'internal');
  assert.equal(out.text.split('\n').length, lines.length + 1, 'every line ends with a newline');
  assert.equal(lines.length, 9);
});

test('JSON reporter, built as the CLI builds it: no password in any line, though the conninfo had one', async () => {
  const password = 'Sup3r-s3cret-pw';
  const port = await freePort(); // nothing listens there
  const conninfo = `host=127.0.0.1 port=${port} user=postgres password=${password} connect_timeout=5`;
  // Nothing is masked: the guarantee is that nothing the reporter is given carries the password.
  {
    const out = new Capture();
    const reporter = createReporter({ json: true, stream: out });
    const source = new ReplicationSource({ connection: { conninfo }, checkpoint: 'fast' });
    const err = await pipeline(
      source,
      progress({ onProgress: (p) => reporter.progress(p) }),
      new Writable({ objectMode: true, write: (_e, _n, cb) => cb() }),
    ).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err, 'the connection must fail');
    reporter.error(err);
    reporter.close();
    const lines = out.lines();
    const error = JSON.parse(lines[lines.length - 1]);
    assert.equal(error.event, 'error');
    assert.equal(error.code, 'connection');
    assert.match(error.message, new RegExp(String(port)));
    assert.ok(!out.text.includes(password), out.text);
    assert.ok(!out.text.includes('s3cret'));
  }
});

test('-P without a terminal: a plain line at most every interval, and a last one', () => {
  const out = new Capture();
  let now = 0;
  const r = new ProgressReporter(out, { tty: false, lineIntervalMs: 5000, now: () => now });
  r.start(START);
  for (let t = 0; t <= 12_000; t += 1000) {
    now = t;
    r.progress({ done: t, total: 12_000, rateBytesPerSec: 1000, etaSeconds: (12_000 - t) / 1000, elapsedSeconds: t / 1000, phase: 'backup' });
  }
  r.result({ startLsn: '0/1', endLsn: '0/2', timeline: 1, bytes: 12_000, files: 1, seconds: 12 });
  const lines = out.lines();
  assert.deepEqual(lines, [
    'pgbb: 0 bytes of 11.7 kB (0%), 1000 bytes/s, ETA 12s',
    'pgbb: 4.9 kB of 11.7 kB (41%), 1000 bytes/s, ETA 7s',
    'pgbb: 9.8 kB of 11.7 kB (83%), 1000 bytes/s, ETA 2s',
    'pgbb: 11.7 kB of 11.7 kB (100%), 1000 bytes/s, done in 12s',
  ]);
});

test('-P on a terminal: a cli-progress bar, warnings above it, timer stopped by close()', async () => {
  const out = new Capture();
  out.isTTY = true;
  const before = timeouts();
  const r = createReporter({ progress: true, stream: out });
  assert.ok(r instanceof ProgressReporter);
  r.start(START);
  assert.ok(timeouts() > before, 'the bar redraws on a timer');
  r.progress({ done: 2048, total: 5120, rateBytesPerSec: 1024, etaSeconds: 3, elapsedSeconds: 2, phase: 'backup' });
  await new Promise((res) => setTimeout(res, 250));
  r.warning('checksum', 'checksum mismatch'); // just before the end: must not be lost
  r.result({ startLsn: '0/1', endLsn: '0/2', timeline: 1, bytes: 5120, files: 1, seconds: 5 });
  r.close();
  assert.equal(timeouts(), before, 'no timer left');
  assert.match(out.text, /\u2588+\u2591+ 2\.0 kB of 5\.0 kB \(40%\) \| 1\.0 kB\/s \| ETA 3s/);
  assert.match(out.text, /pgbb: warning: checksum mismatch\n/);
  assert.match(out.text, /done in 5s/);
});

test('-P while the server checkpoints: said at once, then how long it has waited, until the first byte; steps only with -v', async () => {
  const out = new Capture();
  let now = 0;
  const before = timeouts();
  const r = new ProgressReporter(out, { tty: false, lineIntervalMs: 20, now: () => now });
  r.step({ code: 'checkpoint', message: 'initiating base backup, waiting for checkpoint to complete' });
  assert.deepEqual(out.lines(), ['pgbb: initiating base backup, waiting for checkpoint to complete']);
  now = 75_000;
  await new Promise((res) => setTimeout(res, 70));
  assert.ok(out.lines().length >= 2, out.text);
  assert.equal(out.lines()[1], 'pgbb: still waiting for checkpoint (1m15s)');
  r.step({ code: 'started', message: 'checkpoint completed' }); // not verbose: not printed
  r.start(START);
  const n = out.lines().length;
  await new Promise((res) => setTimeout(res, 70));
  assert.equal(out.lines().length, n, 'the ticker stops at the start');
  assert.ok(!out.text.includes('checkpoint completed'));
  r.close();
  assert.equal(timeouts(), before, 'no timer left');

  const v = new Capture();
  const rv = createReporter({ progress: true, verbose: true, stream: v });
  rv.step!({ code: 'ended', message: 'write-ahead log end point: 0/2000100' });
  rv.close();
  assert.equal(v.text, 'pgbb: write-ahead log end point: 0/2000100\n');
});

test('plain reporter: warnings only, and steps with -v', () => {
  const v = new Capture();
  const rv = createReporter({ stream: v, verbose: true });
  rv.step!({ code: 'started', message: 'checkpoint completed; write-ahead log start point: 0/2000028 on timeline 1' });
  assert.equal(v.text, 'pgbb: checkpoint completed; write-ahead log start point: 0/2000028 on timeline 1\n');

  const out = new Capture();
  const r = createReporter({ stream: out });
  r.start(START);
  r.progress({ done: 1, total: 2, rateBytesPerSec: 1, etaSeconds: 1, elapsedSeconds: 1, phase: 'backup' });
  r.warning('server', 'something odd');
  r.step!({ code: 'done', message: 'base backup completed' });
  r.error(new Error('x'));
  assert.equal(out.text, 'pgbb: warning: something odd\n');
  assert.equal(typeof plainReporter, 'function');
});

test('formatting: PostgreSQL units and short durations', () => {
  assert.equal(formatBytes(512), '512 bytes');
  assert.equal(formatBytes(1536), '1.5 kB');
  assert.equal(formatBytes(20 * 1024 * 1024), '20.0 MB');
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(125), '2m05s');
  assert.equal(formatDuration(3 * 3600 + 120), '3h02m');
  assert.equal(
    describeProgress({ done: 1024, total: null, rateBytesPerSec: 1024, etaSeconds: null, elapsedSeconds: 3, phase: 'wal' }),
    '1.0 kB, 1.0 kB/s, 3s elapsed, WAL',
  );
  assert.equal(
    describeProgress({ done: 2048, total: 4096, rateBytesPerSec: 1024, etaSeconds: 2, elapsedSeconds: 3, phase: 'wal', walBytes: 16 * 1024 * 1024 }),
    '2.0 kB of 4.0 kB (50%), 1.0 kB/s, ETA 2s, + 16.0 MB WAL',
  );
  // refresh -P: what it wrote beside what it received.
  assert.equal(
    describeProgress({ done: 40 * 1024 * 1024, total: 80 * 1024 * 1024, rateBytesPerSec: 1024 * 1024, etaSeconds: 40, elapsedSeconds: 40, phase: 'backup', writtenBytes: 3 * 1024 * 1024 }),
    '40.0 MB of 80.0 MB (50%), 1.0 MB/s, ETA 40s, wrote 3.0 MB',
  );
});
