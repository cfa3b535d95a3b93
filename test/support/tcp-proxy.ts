/**
 * A loopback TCP proxy that can be cut like a network link: cut() destroys
 * every connection through it and stops listening, so the link stays down
 * (a new connection is refused) until restore() listens again on the same
 * port. What pgbb is given is the proxy's address, so everything it and the
 * standby it starts send to the primary crosses the proxy.
 *
 *   const proxy = await startTcpProxy({ host: primary.host, port: primary.port });
 *   runPgbb(['standby', '-d', `host=${proxy.host} port=${proxy.port} …`, …]);
 *   await proxy.cut();      // sockets destroyed, port closed
 *   await proxy.restore();  // accepting again
 *   await proxy.close();    // for good (scratch.defer)
 *
 * `accepted` counts connections since the start, so that a test can tell
 * that traffic went through it. Errors: restore() rejects when the port has
 * been taken meanwhile.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  host: string;
  port: number;
  readonly accepted: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let server: Server | null = null;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        accepted++;
        const upstream = connect(target.port, target.host);
        for (const end of [client, upstream]) {
          sockets.add(end);
          end.on('close', () => sockets.delete(end));
          // One side gone takes the other with it, as on a link that broke.
          end.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      s.once('error', reject).listen(port, '127.0.0.1', () => resolve(s));
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = null;
      for (const end of sockets) end.destroy();
      if (!s) return resolve();
      s.close(() => resolve());
    });
  server = await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    get accepted() {
      return accepted;
    },
    cut: stop,
    restore: async () => {
      if (!server) server = await listen(port);
    },
    close: stop,
  };
}
