/**
 * A TCP relay that behaves like a link with a fixed one-way delay, for
 * kernels without netem (bench/support/delayed-link.ts falls back to it).
 *
 *   client ─► 127.0.0.1:port ─► (held `delayMs`) ─► target     and back the same way
 *
 * Each direction holds every chunk it reads for `delayMs` before writing it
 * on, and counts it "in flight" until `delayMs` after that write (the ACK's
 * way back): at most `windowBytes` in flight, then it stops reading. That is
 * TCP's limit on a real link — one receive window per round trip — so a
 * single stream tops out near windowBytes / (2 × delayMs), and a
 * request-response protocol pays the full round trip per request.
 * Not modelled: slow start, loss, a bandwidth limit.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface DelayRelay {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startDelayRelay(target: { host: string; port: number }, delayMs: number, windowBytes: number): Promise<DelayRelay> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      // Either side going away takes the other with it, as a reset would.
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    delayed(client, upstream, delayMs, windowBytes);
    delayed(upstream, client, delayMs, windowBytes);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function delayed(from: Socket, to: Socket, delayMs: number, windowBytes: number): void {
  const queue: { chunk: Buffer | null; due: number }[] = [];
  let inFlight = 0;
  let timer: NodeJS.Timeout | null = null;
  const ack = (n: number) => {
    inFlight -= n;
    if (inFlight < windowBytes && from.isPaused() && !from.destroyed) from.resume();
  };
  const flush = () => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        return;
      }
      if (to.destroyed) return;
      to.write(chunk, () => setTimeout(() => ack(chunk.length), delayMs));
    }
    schedule();
  };
  const schedule = () => {
    if (timer === null && queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0].due - performance.now()));
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ chunk, due: performance.now() + delayMs });
    inFlight += chunk.length;
    if (inFlight >= windowBytes) from.pause();
    schedule();
  });
  from.on('end', () => {
    queue.push({ chunk: null, due: performance.now() + delayMs });
    schedule();
  });
}
