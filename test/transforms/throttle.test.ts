import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { throttle, throttleBytes } from '../../transforms/throttle';
import { RateLimiter } from '../../src/rate-limiter';
import type { BackupEvent } from '../../src/events';

const MiB = 1024 * 1024;

function events(totalBytes: number, chunk = 32 * 1024): BackupEvent[] {
  const out: BackupEvent[] = [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    { type: 'entry', path: 'f', kind: 'file', size: totalBytes, mode: 0o600, mtime: new Date(0) },
  ];
  for (let off = 0; off < totalBytes; off += chunk) out.push({ type: 'data', offset: off, chunk: Buffer.alloc(Math.min(chunk, totalBytes - off), off & 0xff) });
  out.push({ type: 'entry-end' }, { type: 'archive-end' });
  return out;
}

function collector(into: { ev: BackupEvent; t: number }[]): Writable {
  return new Writable({
    objectMode: true,
    write(ev: BackupEvent, _e, cb) {
      into.push({ ev, t: performance.now() });
      cb();
    },
  });
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('2 MiB at 4 MiB/s with a 256 KiB bucket takes (2 MiB − 256 KiB) / 4 MiB/s ≈ 0.44 s ± 10%', async () => {
  const input = events(2 * MiB);
  const got: { ev: BackupEvent; t: number }[] = [];
  const t0 = performance.now();
  // (A bucket of 1/16 s also absorbs the event loop's lateness on a busy machine.)
  await pipeline(Readable.from(input), throttle(new RateLimiter(4 * MiB, { burstBytes: 256 * 1024 })), collector(got));
  const s = (performance.now() - t0) / 1000;
  const expected = (2 * MiB - 256 * 1024) / (4 * MiB);
  assert.ok(Math.abs(s - expected) <= expected * 0.1, `took ${s.toFixed(3)} s, expected ${expected.toFixed(3)} s`);
  // Every event, in order, the very same objects.
  assert.equal(got.length, input.length);
  got.forEach((g, i) => assert.equal(g.ev, input[i]));
});

test('a number is kB/s in pg_basebackup units, with the default bucket (1/10 s)', async () => {
  const t = throttle(4096);
  assert.equal(t.limiter.bytesPerSecond, 4 * MiB);
  const t0 = performance.now();
  await pipeline(Readable.from(events(2 * MiB)), t, collector([]));
  const s = (performance.now() - t0) / 1000;
  const expected = (2 * MiB - 0.4 * MiB) / (4 * MiB);
  assert.ok(Math.abs(s - expected) <= expected * 0.1, `took ${s.toFixed(3)} s, expected ${expected.toFixed(3)} s`);
});

test('events other than data pass at once even while the bucket is in debt', async () => {
  const limiter = new RateLimiter(1 * MiB, { burstBytes: 1 });
  const got: { ev: BackupEvent; t: number }[] = [];
  const input: BackupEvent[] = [
    { type: 'entry', path: 'a', kind: 'file', size: 0, mode: 0o600, mtime: new Date(0) },
    { type: 'entry-end' },
    { type: 'warning', code: 'x', message: 'y' },
    { type: 'progress', done: 1, total: null },
  ];
  limiter.take(10 * MiB); // ten seconds of debt
  const t0 = performance.now();
  await pipeline(Readable.from(input), throttle(limiter), collector(got));
  assert.ok(performance.now() - t0 < 200);
  assert.deepEqual(got.map((g) => g.ev), input);
});

test('destroy during a wait: no hang, the timer is cleared', async () => {
  const limiter = new RateLimiter(1024, { burstBytes: 1 });
  const t = throttle(limiter);
  const before = timeouts();
  t.write({ type: 'data', offset: 0, chunk: Buffer.alloc(60 * 1024) }); // a minute's wait
  await new Promise((r) => setImmediate(r));
  assert.equal(t.waiting, true);
  assert.equal(timeouts(), before + 1);
  const err = new Error('aborted');
  const closed = new Promise<Error | undefined>((resolve) => {
    t.on('error', (e) => resolve(e));
  });
  t.destroy(err);
  assert.equal(await closed, err);
  assert.equal(t.waiting, false);
  assert.equal(timeouts(), before);
});

test('a pipeline abort while throttled rejects at once and leaves no timer', async () => {
  const ac = new AbortController();
  const before = timeouts();
  const p = pipeline(Readable.from(events(4 * MiB)), throttle(new RateLimiter(64 * 1024, { burstBytes: 1 })), collector([]), { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  const t0 = performance.now();
  await assert.rejects(p, { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 1000);
  await new Promise((r) => setImmediate(r));
  assert.equal(timeouts(), before);
});

test('one limiter shared by two streams holds their combined rate', async () => {
  const limiter = new RateLimiter(4 * MiB, { burstBytes: 256 * 1024 });
  const t0 = performance.now();
  await Promise.all([
    pipeline(Readable.from(events(1 * MiB)), throttle(limiter), collector([])),
    pipeline(Readable.from(events(1 * MiB)), throttle(limiter), collector([])),
  ]);
  const s = (performance.now() - t0) / 1000;
  const expected = (2 * MiB - 256 * 1024) / (4 * MiB);
  assert.ok(Math.abs(s - expected) <= expected * 0.1, `took ${s.toFixed(3)} s, expected ${expected.toFixed(3)} s`);
});

test('throttleBytes: one 1 MiB buffer goes out in 64 KiB slices at the rate, bytes unchanged', async () => {
  const input = Buffer.alloc(1 * MiB);
  for (let i = 0; i < input.length; i++) input[i] = (i * 7) & 0xff;
  const pieces: { n: number; t: number }[] = [];
  const out: Buffer[] = [];
  const t0 = performance.now();
  await pipeline(
    Readable.from([input], { objectMode: false }),
    throttleBytes(new RateLimiter(2 * MiB, { burstBytes: 128 * 1024 })),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        pieces.push({ n: chunk.length, t: performance.now() - t0 });
        out.push(chunk);
        cb();
      },
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const expected = (1 * MiB - 128 * 1024) / (2 * MiB);
  assert.ok(Math.abs(s - expected) <= expected * 0.1, `took ${s.toFixed(3)} s, expected ${expected.toFixed(3)} s`);
  assert.ok(pieces.every((p) => p.n <= 64 * 1024));
  assert.ok(pieces.length >= 16);
  assert.ok(Buffer.concat(out).equals(input));
  // Smooth: the half-way slice went out near half time, not all at the end.
  const mid = pieces[Math.floor(pieces.length / 2)].t / 1000;
  assert.ok(mid > expected * 0.3 && mid < expected * 0.7, `middle slice at ${mid.toFixed(3)} s`);
});

test('a paced archive (streamed WAL the receiver already paid for) passes at once; the archive after it is charged again', async () => {
  const wal = events(MiB).map((ev): BackupEvent => (ev.type === 'archive' ? { ...ev, kind: 'wal', name: 'pg_wal', paced: true } : ev));
  const limiter = new RateLimiter(MiB, { burstBytes: 64 * 1024 });
  const got: { ev: BackupEvent; t: number }[] = [];
  const t0 = performance.now();
  await pipeline(Readable.from(wal), throttle(limiter), collector(got));
  assert.ok(performance.now() - t0 < 150, `1 MiB at 1 MiB/s passed in ${performance.now() - t0} ms: not charged twice`);
  const t1 = performance.now();
  await pipeline(Readable.from(events(256 * 1024)), throttle(limiter), collector(got));
  assert.ok(performance.now() - t1 > 150, `an unpaced archive waits for its bytes (${performance.now() - t1} ms)`);
});
