import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, timerDelay } from '../../src/rate-limiter';
import { UsageError } from '../../src/errors';

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('take: exact waits from a full bucket, then debt paid in time', () => {
  const c = clock(1000);
  const rl = new RateLimiter(1000, { burstBytes: 100, now: c.now });
  assert.equal(rl.take(100), 0, 'a full bucket passes its burst at once');
  assert.equal(rl.take(50), 50, '50 bytes of debt at 1000 B/s is 50 ms');
  c.advance(50);
  assert.equal(rl.take(100), 100);
  c.advance(30);
  // 70 ms of debt left, plus 20 more bytes.
  assert.equal(rl.take(20), 90);
  assert.equal(rl.take(0), 0, 'zero bytes never wait');
});

test('take: a chunk larger than the bucket is allowed, and waits for all of it', () => {
  const c = clock();
  const rl = new RateLimiter(1000, { burstBytes: 100, now: c.now });
  assert.equal(rl.take(1100), 1000);
});

test('refill caps at the burst size after idling', () => {
  const c = clock();
  const rl = new RateLimiter(1000, { burstBytes: 100, now: c.now });
  rl.take(100);
  c.advance(10_000);
  assert.equal(rl.take(150), 50, 'ten idle seconds bank only 100 bytes');
});

test('unusedBytes counts the allowance lost while the bucket was full, and nothing while in debt', () => {
  const c = clock();
  const rl = new RateLimiter(1000, { burstBytes: 100, now: c.now });
  rl.take(300); // 200 bytes of debt
  c.advance(250); // pays the debt, then earns 50 bytes
  rl.take(10);
  assert.equal(rl.unusedBytes, 0);
  c.advance(1000); // 40 + 1000 earned, the bucket holds 100
  rl.take(10);
  assert.equal(rl.unusedBytes, 940);
});

test('default burst is a tenth of a second of rate', () => {
  const rl = new RateLimiter(20 * 1024 * 1024);
  assert.equal(rl.burstBytes, 2 * 1024 * 1024);
});

test('shared by two consumers: their combined rate is the limit, split evenly', () => {
  const c = clock();
  const rate = 10_000;
  const rl = new RateLimiter(rate, { burstBytes: 1000, now: c.now });
  // A tiny event loop: each consumer passes a 500-byte chunk, then sleeps for
  // what take() says before passing its next one.
  const wake = [0, 0];
  const passed = [0, 0];
  const endAt = 10_000;
  while (true) {
    const i = wake[0] <= wake[1] ? 0 : 1;
    if (wake[i] >= endAt) break;
    c.advance(wake[i] - c.now());
    const ms = rl.take(500);
    // The chunk goes on after its wait; count it when it goes.
    if (wake[i] + ms <= endAt) passed[i] += 500;
    wake[i] += ms + 0.001;
  }
  const total = passed[0] + passed[1];
  const expected = (rate * endAt) / 1000;
  assert.ok(total <= expected + 1000 + 500, `combined ${total} ≤ ${expected} + burst`);
  assert.ok(total >= expected * 0.99, `combined ${total} ≥ 99% of ${expected}`);
  assert.ok(Math.abs(passed[0] - passed[1]) <= 1000, `split ${passed[0]} / ${passed[1]}`);
});

test('acquire: resolves after the wait on the real clock', async () => {
  const rl = new RateLimiter(1_000_000, { burstBytes: 1 });
  const t0 = performance.now();
  await rl.acquire(50_001); // 50 ms of debt
  const ms = performance.now() - t0;
  assert.ok(ms >= 45 && ms < 200, `waited ${ms} ms`);
});

test('acquire: an abort rejects with the reason and clears the timer', async () => {
  const rl = new RateLimiter(1000, { burstBytes: 1 });
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const ac = new AbortController();
  const p = rl.acquire(60_000, ac.signal); // a minute's wait
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before + 1);
  const reason = new Error('stop');
  ac.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before);
  await assert.rejects(rl.acquire(1, ac.signal), (e) => e === reason, 'already aborted');
});

test('invalid rates are usage errors', () => {
  for (const r of [0, -1, Number.NaN, Infinity]) assert.throws(() => new RateLimiter(r), UsageError);
  assert.throws(() => new RateLimiter(10, { burstBytes: 0 }), UsageError);
});

test('timerDelay rounds up to whole milliseconds, at least 1', () => {
  assert.equal(timerDelay(0.2), 1);
  assert.equal(timerDelay(1.6), 2);
  assert.equal(timerDelay(5), 5);
});
