/**
 * The one place pgbb reaches into `pg`'s private fields. `pg` opens the
 * session — authentication (SCRAM, md5, password files) and TLS as libpq's
 * sslmode says — and then hands over its socket: the TLSSocket it put in
 * place of the TCP one when the session is encrypted.
 *
 * Why private fields: `pg` exposes neither the socket of a connected Client
 * nor its BackendKeyData (pid, secret key, needed for a CancelRequest), and
 * its parser (pg-protocol) knows no CopyBoth and recycles the buffers its
 * CopyData slices point into, so the session must be read with our own parser
 * (src/codec/protocol/backend-parser.ts). pg's exported Connection class
 * does not help: a Client only takes one through an untyped option, and the
 * TLS upgrade replaces its `stream` anyway. The fields used are `connection`
 * (`stream`, `startup`), `processID`, `secretKey`, `host`, `port`: all in pg
 * since 8.0; tests with real servers (test/integration) notice a change.
 */
import type { ClientConfig } from 'pg';
import { pgClient } from './pg-module';
import { Socket } from 'node:net';
import { startupPacket } from '../codec/protocol/startup';
import { SlabReader } from '../io/slab-pool';

interface PgInternals {
  connection: { startup(p: Record<string, string>): void; stream: Socket };
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
}

/** Where to send a CancelRequest for this session. */
export interface CancelKey {
  host: string;
  port: number;
  pid: number;
  secret: number;
}

export interface PgSession {
  socket: Socket;
  /** From now on every byte the server sends goes to `handler` (and no longer to pg). */
  read(handler: (chunk: Buffer) => void): void;
  /** The server process's pid (BackendKeyData). */
  pid: number | undefined;
  cancelKey: CancelKey | null;
  /** Sends Terminate; resolves when pg is done (ignoring its errors). */
  end(): Promise<void>;
  /** pg's 'error' and 'end' of the session, after it is open. */
  onLost(listener: (err?: Error) => void): void;
}

/**
 * Opens a session with pg. `onSocket` hears of the socket at once, so that
 * an abort can destroy it while connecting. Rejects with pg's error.
 *
 * `slabs`: read a plain TCP or Unix socket into recycled memory
 * (src/io/slab-pool.ts): pg gets a socket of ours with `onread`, and a copy
 * of what it reads until the session is open. A TLS session keeps Node's
 * reads (the TLS layer reads the socket's handle itself).
 */
export async function openPgSession(config: ClientConfig, onSocket: (socket: () => Socket) => void, slabs = false): Promise<PgSession> {
  const own = slabs && !config.ssl ? slabSocket() : null;
  const client = new (pgClient())(own ? { ...config, stream: () => own.socket } : config);
  const pg = client as unknown as PgInternals;
  // Send the startup packet pg_basebackup sends: no client_encoding (see protocol/startup.ts).
  pg.connection.startup = (params) => void pg.connection.stream.write(startupPacket(params));
  const socketOf = () => pg.connection.stream;
  onSocket(socketOf);
  // pg emits 'error' on the client too; without a listener Node would throw.
  const early = () => {};
  client.on('error', early);
  try {
    await client.connect();
  } finally {
    client.removeListener('error', early);
  }
  const socket = socketOf();
  // Take the socket from pg's parser for good.
  for (const l of socket.listeners('data')) socket.removeListener('data', l as (...a: unknown[]) => void);
  return {
    socket,
    read: (handler) => {
      if (own) own.take(handler);
      else socket.on('data', handler);
    },
    pid: pg.processID ?? undefined,
    cancelKey: pg.processID && pg.secretKey != null ? { host: pg.host, port: pg.port, pid: pg.processID, secret: pg.secretKey } : null,
    end: () => client.end().catch(() => {}),
    onLost: (listener) => {
      client.on('error', (err) => listener(err));
      client.on('end', () => listener());
    },
  };
}

/** A socket that reads into slabs; what it reads goes to pg (copied) until `take`, then to the taker. */
function slabSocket(): { socket: Socket; take(handler: (chunk: Buffer) => void): void } {
  const reader = new SlabReader();
  let taker: ((chunk: Buffer) => void) | null = null;
  let early: Buffer[] = [];
  // onread is a constructor option since Node 12 (lib/net.js), though @types/node lists it only for connect().
  const options = {
    onread: {
      buffer: () => reader.next(),
      callback: (n: number) => {
        const chunk = reader.got(n);
        if (taker) taker(chunk);
        // pg's parser keeps what it is given; the slab is read into again.
        else if (socket.listenerCount('data') > 0) socket.emit('data', Buffer.from(chunk));
        else early.push(Buffer.from(chunk));
        return true;
      },
    },
  };
  const socket = new Socket(options as ConstructorParameters<typeof Socket>[0]);
  socket.once('close', () => reader.finish());
  return {
    socket,
    take: (handler) => {
      taker = handler;
      const pending = early;
      early = [];
      for (const chunk of pending) handler(chunk);
    },
  };
}
