import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { progress, type ProgressInfo } from '../../transforms/progress';
import type { BackupEvent, StartEvent } from '../../src/events';

function start(totalBytes: number | null): StartEvent {
  return {
    type: 'start', serverVersion: 150000, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028',
    tablespaces: [{ oid: null, location: '', size: totalBytes }], walSegmentSize: 16 * 1024 * 1024,
    blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes,
  };
}

const data = (offset: number, n: number): BackupEvent => ({ type: 'data', offset, chunk: Buffer.alloc(n) });
const entry = (path: string): BackupEvent => ({ type: 'entry', path, kind: 'file', size: 0, mode: 0o600, mtime: new Date(0) });

/**
 * Runs `input` through progress() with a fake clock; `tick` events (a
 * warning with code 'tick' and the ms as message) advance the clock.
 */
async function run(input: (BackupEvent | number)[], opts: { intervalMs?: number; windowMs?: number } = {}) {
  let now = 0;
  const reports: ProgressInfo[] = [];
  const out: BackupEvent[] = [];
  const ticks = new Transform({
    objectMode: true,
    transform(x: BackupEvent | { tick: number }, _e, cb) {
      if ('tick' in x) {
        now += x.tick;
        return cb();
      }
      cb(null, x);
    },
  });
  const p = progress({ onProgress: (r) => reports.push(r), now: () => now, ...opts });
  await pipeline(
    Readable.from(input.map((x) => (typeof x === 'number' ? { tick: x } : x))),
    ticks,
    p,
    new Writable({ objectMode: true, write: (ev, _e, cb) => (out.push(ev), cb()) }),
  );
  return { reports, out, result: p.result };
}

test('counts data bytes, reports at most once per interval and once at the end', async () => {
  const input: (BackupEvent | number)[] = [start(10_000), { type: 'archive', kind: 'base', name: 'base', location: '' }, entry('base/1/1')];
  for (let i = 0; i < 10; i++) input.push(500, data(i * 1000, 1000)); // 1000 bytes every 0.5 s
  input.push({ type: 'entry-end' }, { type: 'archive-end' }, { type: 'end', endLsn: '0/3000000', timeline: 1 });
  const { reports, out, result } = await run(input, { intervalMs: 1000 });
  // The first event reports at once, then every second of fake time (5 s in all), then the end.
  assert.equal(reports.length, 1 + 5 + 1);
  assert.deepEqual(reports[0], { done: 0, total: 10_000, rateBytesPerSec: 0, etaSeconds: null, elapsedSeconds: 0, phase: 'backup', walBytes: 0 });
  const mid = reports[3];
  assert.equal(mid.done, 6000);
  assert.equal(mid.currentFile, 'base/1/1');
  assert.ok(Math.abs(mid.rateBytesPerSec - 2000) < 1, `window rate ${mid.rateBytesPerSec}`);
  assert.ok(Math.abs(mid.etaSeconds! - 2) < 0.01, `eta ${mid.etaSeconds}`);
  const last = reports[reports.length - 1];
  assert.equal(last, result);
  assert.equal(last.phase, 'done');
  assert.equal(last.done, 10_000);
  assert.equal(last.etaSeconds, 0);
  assert.equal(last.elapsedSeconds, 5);
  assert.equal(last.rateBytesPerSec, 2000, 'the final rate is the run average');
  assert.equal(out.length, input.filter((x) => typeof x !== 'number').length, 'every event passes');
});

test('the server count wins when present, with data bytes added between its reports', async () => {
  const input: (BackupEvent | number)[] = [
    start(100_000),
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    entry('a'), data(0, 1000),
    { type: 'progress', done: 1536, total: null }, // tar headers make the server's count larger
    1000, data(1000, 1000),
    1000, data(2000, 1000),
    { type: 'progress', done: 3584, total: null },
    1000, data(3000, 100),
  ];
  const { reports } = await run(input, { intervalMs: 1000 });
  const dones = reports.map((r) => r.done);
  assert.deepEqual(dones, [0, 2536, 3536, 3684, 3684]);
  for (let i = 1; i < dones.length; i++) assert.ok(dones[i] >= dones[i - 1], 'never goes backwards');
});

test('WAL appended by -X fetch is counted apart (walBytes), not in done; pg_wal files mean phase wal; the total never jumps', async () => {
  const input: (BackupEvent | number)[] = [
    start(1000),
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    entry('PG_VERSION'), data(0, 900), { type: 'entry-end' },
    1000,
    entry('pg_wal/000000010000000000000002'), data(0, 600),
    1000, data(600, 10),
  ];
  const { reports } = await run(input, { intervalMs: 1000 });
  const walReport = reports.find((r) => r.phase === 'wal')!;
  assert.ok(walReport, 'a wal phase report');
  assert.equal(walReport.currentFile, 'pg_wal/000000010000000000000002');
  for (const r of reports) assert.ok(r.total! >= r.done, `total ${r.total} ≥ done ${r.done}`);
  for (const r of reports) assert.ok(r.total === 1000 || r.phase === 'done', `total ${r.total} stays the estimate until the end`);
  const last = reports[reports.length - 1];
  assert.deepEqual([last.done, last.total, last.walBytes], [900, 900, 610]);
});

test('no estimate: total and eta stay null; tablespace files are named under pg_tblspc', async () => {
  const input: (BackupEvent | number)[] = [
    start(null),
    { type: 'archive', kind: 'tablespace', name: '16384', location: '/ts' },
    entry('PG_15_1/5/16385'),
    1000, data(0, 4096),
    1000, data(4096, 4096),
  ];
  const { reports } = await run(input, { intervalMs: 1000 });
  const r = reports[reports.length - 2];
  assert.equal(r.total, null);
  assert.equal(r.etaSeconds, null);
  assert.equal(r.currentFile, 'pg_tblspc/16384/PG_15_1/5/16385');
  assert.ok(r.rateBytesPerSec > 0);
});

test('the rate window forgets old speed', async () => {
  const input: (BackupEvent | number)[] = [start(null)];
  // 10 s fast (10 kB/s), then 10 s slow (1 kB/s).
  for (let i = 0; i < 10; i++) input.push(1000, data(0, 10_000));
  for (let i = 0; i < 10; i++) input.push(1000, data(0, 1_000));
  const { reports } = await run(input, { intervalMs: 1000, windowMs: 3000 });
  const beforeEnd = reports[reports.length - 2];
  assert.ok(Math.abs(beforeEnd.rateBytesPerSec - 1000) < 1, `rate ${beforeEnd.rateBytesPerSec} follows the last 3 s`);
});

test('an onProgress that throws fails the stream', async () => {
  const p = progress({
    onProgress: () => {
      throw new Error('reporter broke');
    },
  });
  await assert.rejects(
    pipeline(Readable.from([start(1)]), p, new Writable({ objectMode: true, write: (_e, _n, cb) => cb() })),
    /reporter broke/,
  );
});
