/**
 * The bench's delay relay (bench/support/delay-relay.ts), against a real
 * echo server on loopback: bytes pass through intact and in order, a round
 * trip costs at least twice the one-way delay, and a window smaller than the
 * data makes a stream wait a round trip per window. Only lower bounds: a
 * loaded machine can make anything slower, never faster.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { startDelayRelay } from '../../bench/support/delay-relay';

let echo: Server;
let port: number;
before(async () => {
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  port = (echo.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => echo.close(() => r())));

/** Sends `data` through host:port to the echo server; resolves with what came back and the milliseconds it took. */
function roundTrip(host: string, p: number, data: Buffer): Promise<{ back: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    let got = 0;
    const s = connect(p, host, () => s.write(data));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= data.length) {
        s.end();
        resolve({ back: Buffer.concat(chunks), ms: performance.now() - t0 });
      }
    });
    s.on('error', reject);
  });
}

test('a round trip through the relay takes at least twice the delay; the bytes come back as sent', async () => {
  const relay = await startDelayRelay({ host: '127.0.0.1', port }, 30, 1 << 20);
  try {
    const small = await roundTrip(relay.host, relay.port, Buffer.from('ping'));
    assert.equal(small.back.toString(), 'ping');
    assert.ok(small.ms >= 59, `${small.ms.toFixed(1)} ms`);
    const data = randomBytes(3 << 20);
    const big = await roundTrip(relay.host, relay.port, data);
    assert.ok(big.back.equals(data), 'intact and in order');
  } finally {
    await relay.close();
  }
});

test('a window smaller than the data: the stream waits a round trip per window', async () => {
  const window = 64 * 1024;
  const relay = await startDelayRelay({ host: '127.0.0.1', port }, 10, window);
  try {
    const data = randomBytes(1 << 20);
    const r = await roundTrip(relay.host, relay.port, data);
    assert.ok(r.back.equals(data));
    // Per 20 ms round trip at most a window plus the one read (≤ 64 KiB) that crossed it: ≥ 8 round trips for 1 MiB.
    assert.ok(r.ms >= 7 * 20, `${r.ms.toFixed(1)} ms for 1 MiB through a 64 KiB window`);
  } finally {
    await relay.close();
  }
});
