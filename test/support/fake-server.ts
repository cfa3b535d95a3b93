/**
 * A scripted fake PostgreSQL server for unit tests of the connection layer
 * (src/net/*): a net.Server on loopback that speaks just enough of the v3
 * protocol — SSLRequest refused, startup with trust authentication,
 * BackendKeyData, simple-query replies scripted per test (defaults answer
 * IDENTIFY_SYSTEM and SHOW), and it records CancelRequests. Replies are raw
 * backend messages (test/support/backend-messages.ts), so a test can also be
 * silent, send an ErrorResponse, or drop the connection.
 *
 * Real servers stay the referee (test/integration/*); this one is for what a
 * real server will not do on cue.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as m from './backend-messages';

export const FAKE_SETTINGS: Record<string, string> = {
  server_version_num: '170002',
  block_size: '8192',
  wal_segment_size: '16MB',
  segment_size: '1GB',
  data_checksums: 'on',
  data_directory_mode: '0700',
};
export const FAKE_SYSTEM_ID = '7350000000000000001';

/** One session, as a query handler sees it. */
export interface FakeSession {
  readonly socket: Socket;
  readonly pid: number;
  readonly secret: number;
  send(...messages: Buffer[]): void;
  /** A whole simple-query reply: rows under `columns`, CommandComplete, ReadyForQuery. */
  rows(columns: string[], rows: (string | null)[][], tag?: string): void;
  error(sqlstate: string, message: string, severity?: string): void;
  /** Drops the connection (a reset, as a crashed server's). */
  drop(): void;
}

/** Answers one query; return false to fall back to the defaults. */
export type QueryScript = (sql: string, s: FakeSession) => boolean | void;

export interface FakeServer {
  readonly port: number;
  readonly host: string;
  /** conninfo for pgbb (no TLS). */
  readonly conninfo: string;
  readonly queries: string[];
  readonly cancels: { pid: number; secret: number }[];
  /** Resolves at the next CancelRequest. */
  nextCancel(): Promise<{ pid: number; secret: number }>;
  /** Startup never answered (a server that accepts and hangs). */
  silentStartup: boolean;
  close(): Promise<void>;
}

let nextPid = 4000;

export async function fakeServer(script: QueryScript = () => false): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  const cancelWaiters: ((c: { pid: number; secret: number }) => void)[] = [];
  const state = {
    queries: [] as string[],
    cancels: [] as { pid: number; secret: number }[],
    silentStartup: false,
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const pid = nextPid++;
    const secret = 0x1234 + pid;
    const session: FakeSession = {
      socket,
      pid,
      secret,
      send: (...msgs) => void (socket.writable && socket.write(Buffer.concat(msgs))),
      rows: (columns, rows, tag = 'SELECT') =>
        session.send(m.rowDescription(columns), ...rows.map((r) => m.dataRow(r)), m.commandComplete(tag), m.readyForQuery()),
      error: (sqlstate, message, severity = 'ERROR') => {
        session.send(m.errorResponse({ severity, code: sqlstate, message }));
        if (severity === 'ERROR') session.send(m.readyForQuery());
      },
      drop: () => socket.resetAndDestroy(),
    };
    let buf = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          const body = buf.subarray(0, len);
          buf = buf.subarray(len);
          if (code === 80877103 || code === 80877104) {
            socket.write('N'); // SSLRequest / GSSENCRequest: not here
            continue;
          }
          if (code === 80877102) {
            const c = { pid: body.readInt32BE(8), secret: body.readInt32BE(12) };
            state.cancels.push(c);
            cancelWaiters.splice(0).forEach((w) => w(c));
            socket.end();
            return;
          }
          started = true;
          if (state.silentStartup) return;
          const key = Buffer.alloc(8);
          key.writeInt32BE(pid, 0);
          key.writeInt32BE(secret, 4);
          session.send(m.msg('R', Buffer.alloc(4)), m.msg('S', Buffer.from('server_version\x0017.2\x00')), m.msg('K', key), m.readyForQuery());
          continue;
        }
        if (buf.length < 5) return;
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'X') {
          socket.end();
          return;
        }
        if (type !== 'Q') continue; // CopyData / CopyDone from the client
        const sql = body.toString('utf8', 0, body.length - 1);
        state.queries.push(sql);
        if (script(sql, session) === true) continue;
        defaults(sql, session);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: '127.0.0.1',
    conninfo: `host=127.0.0.1 port=${port} user=fake sslmode=disable`,
    get queries() {
      return state.queries;
    },
    get cancels() {
      return state.cancels;
    },
    nextCancel: () => new Promise((resolve) => cancelWaiters.push(resolve)),
    get silentStartup() {
      return state.silentStartup;
    },
    set silentStartup(v: boolean) {
      state.silentStartup = v;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function defaults(sql: string, s: FakeSession): void {
  const show = /^SHOW (\w+)$/.exec(sql);
  if (show && show[1] in FAKE_SETTINGS) return s.rows([show[1]], [[FAKE_SETTINGS[show[1]]]], 'SHOW');
  if (sql === 'IDENTIFY_SYSTEM') return s.rows(['systemid', 'timeline', 'xlogpos', 'dbname'], [[FAKE_SYSTEM_ID, '1', '0/3000000', null]], 'IDENTIFY_SYSTEM');
  s.error('42601', `syntax error at or near "${sql.split(' ')[0]}"`);
}
