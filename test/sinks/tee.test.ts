import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tee } from '../../sinks/tee';
import { UsageError } from '../../src/errors';
import { isBackupSink, type WalPlace } from '../../src/sink';

/** A sink that records what it got, optionally slow, failing, or a BackupSink (src/sink.ts) with a ready() and a walPlace(). */
class Recorder extends Writable {
  got: unknown[] = [];
  destroyedWith: Error | null | undefined = undefined;
  finals = 0;
  constructor(
    private readonly opts: { delayMs?: number; failAt?: number; finalDelayMs?: number; hwm?: number; ready?: () => Promise<void>; walPlace?: WalPlace | null } = {},
  ) {
    super({ objectMode: true, highWaterMark: opts.hwm ?? 16 });
    if (opts.ready) Object.assign(this, { ready: opts.ready, walPlace: () => opts.walPlace ?? null });
  }
  override _write(ev: unknown, _e: BufferEncoding, cb: (err?: Error | null) => void) {
    if (this.opts.failAt !== undefined && this.got.length === this.opts.failAt) return cb(new Error(`sink failed at event ${this.opts.failAt}`));
    this.got.push(ev);
    if (this.opts.delayMs) setTimeout(cb, this.opts.delayMs);
    else cb();
  }
  override _final(cb: (err?: Error | null) => void) {
    this.finals++;
    setTimeout(cb, this.opts.finalDelayMs ?? 0);
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void) {
    this.destroyedWith = err;
    // Cleanup takes a moment, as removing a half-written directory does.
    setTimeout(() => cb(err), 20);
  }
}

const numbers = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'data', i }));

test('two sinks receive identical event sequences, the very same objects', async () => {
  const a = new Recorder();
  const b = new Recorder();
  const input = numbers(100);
  await pipeline(Readable.from(input), tee(a, b));
  assert.deepEqual(a.got, input);
  assert.equal(b.got.length, input.length);
  b.got.forEach((ev, i) => assert.equal(ev, a.got[i]));
  assert.equal(a.finals, 1);
  assert.equal(b.finals, 1);
});

test('a slow sink paces the other: the fast one is never more than a few buffers ahead', async () => {
  const slow = new Recorder({ delayMs: 5, hwm: 2 });
  const fast = new Recorder({ hwm: 2 });
  let maxLead = 0;
  const fastWrite = fast._write.bind(fast);
  fast._write = (ev, enc, cb) => {
    maxLead = Math.max(maxLead, fast.got.length + 1 - slow.got.length);
    fastWrite(ev, enc, cb);
  };
  const t0 = performance.now();
  await pipeline(Readable.from(numbers(60)), tee(slow, fast));
  const ms = performance.now() - t0;
  assert.ok(ms >= 60 * 5 * 0.9, `took ${ms.toFixed(0)} ms, the slow sink needs ≥ 300 ms`);
  // The tee holds one event in flight; each sink buffers at most its highWaterMark.
  assert.ok(maxLead <= 2 + 2, `fast sink ran ${maxLead} events ahead`);
  assert.equal(fast.got.length, 60);
});

test('_final waits for every sink to finish (commit)', async () => {
  const a = new Recorder({ finalDelayMs: 100 });
  const b = new Recorder();
  const t = tee(a, b);
  const t0 = performance.now();
  await pipeline(Readable.from(numbers(3)), t);
  assert.ok(performance.now() - t0 >= 90);
  assert.ok(a.writableFinished && b.writableFinished);
});

test('a failing sink fails the run with its error, and the other sink is destroyed with it before the run rejects', async () => {
  const good = new Recorder({ delayMs: 1 });
  const bad = new Recorder({ failAt: 5 });
  const err = await pipeline(Readable.from(numbers(50)), tee(good, bad)).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(String(err), /sink failed at event 5/);
  assert.equal(good.destroyedWith, err, 'destroyed with the same error');
  assert.ok(good.closed, 'its cleanup finished before the pipeline rejected');
  assert.ok(good.got.length < 50);
  assert.equal(good.finals, 0, 'never committed');
});

test('destroying the tee destroys every sink and clears drain waits', async () => {
  const a = new Recorder({ delayMs: 1000, hwm: 1 });
  const b = new Recorder();
  const t = tee(a, b);
  t.write({ n: 1 });
  t.write({ n: 2 });
  t.write({ n: 3 });
  await sleep(10);
  assert.ok(a.listenerCount('drain') > 0, 'waiting on the slow sink');
  const err = new Error('abort');
  t.on('error', () => {});
  t.destroy(err);
  await new Promise((r) => t.once('close', r));
  assert.equal(a.destroyedWith, err);
  assert.equal(b.destroyedWith, err);
  assert.ok(a.closed && b.closed, 'the tee closes after its sinks');
  assert.equal(a.listenerCount('drain'), 0);
});

test('a sink closing early is a failure, not a silent short backup', async () => {
  const a = new Recorder({ delayMs: 2 });
  const b = new Recorder({ delayMs: 2 });
  setTimeout(() => b.destroy(), 20);
  await assert.rejects(pipeline(Readable.from(numbers(100)), tee(a, b)), /closed before the backup ended/);
  assert.ok(a.destroyed);
});

test('ready() awaits every sink; when one refuses, the others are destroyed first', async () => {
  let readyA = false;
  const a = new Recorder({ ready: async () => void (await sleep(20), (readyA = true)) });
  const b = new Recorder({ ready: async () => {} });
  await tee(a, b).ready();
  assert.ok(readyA);

  const c = new Recorder({ ready: async () => {} });
  const refused = new Error('directory "/x" exists but is not empty');
  const d = new Recorder({ ready: async () => Promise.reject(refused) });
  const t = tee(c, d);
  t.on('error', () => {});
  await assert.rejects(t.ready(), (e) => e === refused);
  assert.ok(c.closed, 'the other sink cleaned up');
  assert.equal(c.destroyedWith, refused);
});

test('tee needs distinct sinks', () => {
  assert.throws(() => tee(), UsageError);
  const a = new Recorder();
  assert.throws(() => tee(a, a), UsageError);
});

test('the tee is a BackupSink; ready() readies only sinks that implement the contract, not a Writable that merely has a ready()', async () => {
  let called = false;
  const lookalike = new Recorder();
  Object.assign(lookalike, { ready: async () => void (called = true) });
  const real = new Recorder({ ready: async () => {} });
  const t = tee(real, lookalike);
  assert.ok(isBackupSink(t));
  assert.ok(!isBackupSink(lookalike));
  await t.ready();
  assert.equal(called, false, 'no duck typing on ready() alone');
});

test('walPlace(): the first sink that takes WAL in place, else the first spool, else null', () => {
  const ready = async () => {};
  const spool = (d: string) => new Recorder({ ready, walPlace: { walSpool: d } });
  const inPlace = (d: string) => new Recorder({ ready, walPlace: { walDir: d } });
  // WAL can be written in place into one directory only: a later plain target gets it from the read-back data.
  assert.deepEqual(tee(spool('/t1'), inPlace('/p1/pg_wal'), inPlace('/p2/pg_wal')).walPlace(), { walDir: '/p1/pg_wal' });
  assert.deepEqual(tee(new Recorder({ ready }), spool('/t1'), spool('/t2')).walPlace(), { walSpool: '/t1' });
  assert.equal(tee(new Recorder(), new Recorder({ ready })).walPlace(), null);
});
