/**
 * A replication connection: `pg` opens it (authentication; TLS as libpq's
 * sslmode says, see connect()), then we take over the socket — the TLSSocket
 * pg put in place of the TCP one when the session is encrypted — and speak
 * the simple-query and copy sub-protocols ourselves, because pg-protocol
 * knows no CopyBoth and recycles the buffers its CopyData slices point into.
 *
 * One command at a time: `run(sql, handler)` feeds every message of the
 * command to the handler and resolves at ReadyForQuery, or rejects with the
 * server's error. `pause()`/`resume()` stop reading the socket, which is how
 * backpressure reaches the server.
 *
 * A dead or stuck server must not hang a backup:
 * - `timeoutMs` bounds connecting (unless connect_timeout is set) and, while
 *   a command runs and we are reading, the time without a byte from the
 *   server (the watchdog; `allowSilence()` suspends it where the server may
 *   legitimately say nothing: BASE_BACKUP's checkpoint, the wait for WAL
 *   archiving). Time we spend paused does not count.
 * - TCP keepalives (conninfo.ts: 10 s idle, then libuv's 1 s × 10 probes)
 *   notice a vanished host or network when nothing else would.
 * - A server that shuts down or crashes closes the socket: noticed as soon
 *   as we read on (a paused socket first yields what it had buffered), and
 *   the error names the shutdown when the server said so first.
 * `abort()` (destroying a backup mid-command) also sends a CancelRequest:
 * a walsender waiting for a checkpoint would otherwise notice the closed
 * socket only when the checkpoint is over.
 */
import { Client, type ClientConfig } from 'pg';
import { connect as netConnect, type Socket } from 'node:net';
import {
  BackendParser,
  frontendMessage,
  parseDataRow,
  parseNotice,
  parseRowDescription,
  queryMessage,
  type ServerNotice,
} from '../codec/protocol/backend-parser';
import { AuthError, ConnectionError, InterruptedError, PgbbError, ProtocolError, ServerError, systemReason } from '../errors';
import { startupPacket } from '../codec/protocol/startup';
import { describeServer, type PgbbClientConfig } from './conninfo';
import { retryWith, tlsReason } from './tls-options';

export interface ConnectOptions {
  /**
   * Milliseconds: the limit on connecting (unless the conninfo's
   * connect_timeout says otherwise) and the watchdog's limit on silence
   * during a command. 0 or undefined: no limit.
   */
  timeoutMs?: number;
  /** Aborting gives up a connection attempt at once. */
  signal?: AbortSignal;
}

export interface CommandHandler {
  rowDescription?(columns: string[]): void;
  dataRow?(values: (string | null)[]): void;
  commandComplete?(tag: string): void;
  /** CopyOutResponse ('H'), CopyBothResponse ('W') or CopyInResponse ('G'). */
  copyStart?(kind: 'out' | 'both' | 'in'): void;
  copyData?(payload: Buffer): void;
  copyDone?(): void;
  notice?(notice: ServerNotice): void;
}

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
}

/** SQLSTATEs that mean "not allowed in", as opposed to "could not reach". */
function connectError(err: unknown, where: string, timeoutMs: number): PgbbError {
  const e = err as { code?: string; message?: string };
  // Ours, from the password lookup (conninfo.ts).
  if (err instanceof AuthError) return new AuthError(`connection to server at ${where} failed: ${err.message}`, { cause: err });
  if (err instanceof PgbbError) return err;
  let reason = e.code && /^E[A-Z]+$/.test(e.code) ? systemReason(err) : e.message ?? String(err);
  reason = tlsReason(e.code, reason);
  if (reason === 'timeout expired') reason = `timeout expired${timeoutMs ? ` after ${timeoutMs / 1000} s` : ''}`;
  else if (reason === 'Connection terminated unexpectedly') reason = 'server closed the connection unexpectedly';
  const msg = `connection to server at ${where} failed: ${reason}`;
  if (e.code && /^28/.test(e.code)) return new AuthError(msg, { cause: err });
  if (e.code === '42501') return new AuthError(msg, { cause: err });
  if (e.code === '53300') return new PgbbError('wal_senders', msg, { cause: err });
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return new ServerError(msg, e.code, 'connection', { cause: err });
  return new ConnectionError(msg, { cause: err });
}

/** The abort's reason, or an InterruptedError. */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new InterruptedError();
}

/** SQLSTATEs of a server that ends the session: operator intervention (57P0x) or a connection exception (08xxx). */
function isSessionEnd(sqlstate: string): boolean {
  return /^57P0/.test(sqlstate) || /^08/.test(sqlstate);
}

export class ReplicationConnection {
  private readonly parser: BackendParser;
  private handler: CommandHandler | null = null;
  private settle: ((err?: Error) => void) | null = null;
  private pendingError: ServerError | null = null;
  private closed = false;
  private lostError: Error | null = null;
  /** Watchdog state: when we last heard from the server, and whether silence is expected now. */
  private lastHeard = Date.now();
  private paused = false;
  private silenceAllowed = false;
  private watchdog: NodeJS.Timeout | null = null;
  /** What the server said when it announced its shutdown (e.g. "terminating connection due to immediate shutdown command"). */
  private farewell: string | null = null;

  private constructor(
    private readonly client: Client,
    private readonly socket: Socket,
    readonly server: string,
    private readonly timeoutMs: number,
  ) {
    this.parser = new BackendParser((code, body) => this.onMessage(code, body));
    // Take the socket from pg's parser for good.
    for (const l of socket.listeners('data')) socket.removeListener('data', l as (...a: unknown[]) => void);
    socket.on('data', (chunk: Buffer) => {
      this.lastHeard = Date.now();
      try {
        this.parser.write(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    client.on('error', (err) => this.fail(this.lost(err)));
    client.on('end', () => this.fail(this.lost()));
    if (timeoutMs > 0) {
      // A coarse tick: detection within timeoutMs plus a quarter of it, at most 5 s late.
      this.watchdog = setInterval(() => this.checkSilence(), Math.min(5000, Math.max(50, timeoutMs / 4)));
      this.watchdog.unref();
    }
  }

  /**
   * Connects as libpq would for the config's sslmode (conninfo.ts, tls-options.ts):
   * the TLS attempts in order, the next one only where libpq makes it (prefer:
   * plain after the server refused SSL, TLS failed or the server rejected the
   * TLS connection; allow: TLS after the server rejected the plain one).
   */
  static async connect(config: PgbbClientConfig, opts: ConnectOptions = {}): Promise<ReplicationConnection> {
    const plan = config.pgbbTls;
    const attempts = plan ? plan.attempts : [config.ssl];
    for (let i = 0; ; i++) {
      try {
        return await ReplicationConnection.connectOnce({ ...config, ssl: attempts[i] }, opts);
      } catch (err) {
        const next = attempts[i + 1];
        if (next === undefined || opts.signal?.aborted || !retryWith(next, (err as PgbbError).cause ?? err)) throw err;
      }
    }
  }

  private static async connectOnce(config: ClientConfig, opts: ConnectOptions): Promise<ReplicationConnection> {
    const where = `"${describeServer(config)}"`;
    const timeoutMs = opts.timeoutMs ?? 0;
    const connectLimit = config.connectionTimeoutMillis || timeoutMs;
    const client = new Client(connectLimit ? { ...config, connectionTimeoutMillis: connectLimit } : config);
    // Send the startup packet pg_basebackup sends: no client_encoding (see protocol/startup.ts).
    const connection = (client as unknown as { connection: { startup(p: Record<string, string>): void; stream: Socket } }).connection;
    connection.startup = (params) => void connection.stream.write(startupPacket(params));
    const signal = opts.signal;
    if (signal?.aborted) throw abortReason(signal);
    // pg emits 'error' on the client too; without a listener Node would throw.
    const early = (_: unknown) => {};
    client.on('error', early);
    const socketOf = () => (client as unknown as { connection: { stream: Socket } }).connection.stream;
    const onAbort = () => socketOf().destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw connectError(err, where, connectLimit);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      client.removeListener('error', early);
    }
    return new ReplicationConnection(client, socketOf(), where, timeoutMs);
  }

  /** Runs one command; resolves at ReadyForQuery. */
  run(sql: string, handler: CommandHandler = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.lostError ?? new ConnectionError(`connection to ${this.server} is closed`));
    if (this.handler) return Promise.reject(new ProtocolError('another command is in progress on this connection'));
    return new Promise<void>((resolve, reject) => {
      this.handler = handler;
      this.pendingError = null;
      this.lastHeard = Date.now();
      this.settle = (err) => {
        this.handler = null;
        this.settle = null;
        if (err) reject(err);
        else resolve();
      };
      this.socket.write(queryMessage(sql));
    });
  }

  /** Runs a command and collects the rows of its last result set. */
  async query(sql: string): Promise<QueryResult> {
    let result: QueryResult = { columns: [], rows: [] };
    await this.run(sql, {
      rowDescription: (columns) => {
        result = { columns, rows: [] };
      },
      dataRow: (values) => result.rows.push(values),
    });
    return result;
  }

  /** One value of a SHOW command. */
  async show(name: string): Promise<string> {
    const r = await this.query(`SHOW ${name}`);
    const v = r.rows[0]?.[0];
    if (v == null) throw new ProtocolError(`SHOW ${name} returned no value`);
    return v;
  }

  /** Sends CopyData to the server (status updates during START_REPLICATION, UPLOAD_MANIFEST). */
  sendCopyData(payload: Buffer): boolean {
    return this.socket.write(frontendMessage('d', payload));
  }

  sendCopyDone(): void {
    this.socket.write(frontendMessage('c', Buffer.alloc(0)));
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    // Our own pause is not the server's silence.
    if (this.paused) this.lastHeard = Date.now();
    this.paused = false;
    this.socket.resume();
  }

  /**
   * While true, the watchdog lets the server stay silent (BASE_BACKUP's
   * checkpoint, the wait for WAL archiving): the server answers when done,
   * and only TCP keepalives watch the line meanwhile.
   */
  allowSilence(on: boolean): void {
    if (this.silenceAllowed && !on) this.lastHeard = Date.now();
    this.silenceAllowed = on;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The server process's pid (BackendKeyData), e.g. to name a temporary slot. */
  get backendPid(): number | undefined {
    return (this.client as unknown as { processID: number | null }).processID ?? undefined;
  }

  /** Ends the session politely (Terminate); the server aborts any backup still running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchdog();
    this.lostError = new ConnectionError(`connection to ${this.server} is closed`);
    this.socket.resume();
    await Promise.race([
      this.client.end().catch(() => {}),
      new Promise((r) => setTimeout(r, 2000).unref()),
    ]);
    this.socket.destroy();
    this.abortCommand(this.lostError);
  }

  /** Drops the connection at once. */
  destroy(err?: Error): void {
    if (!this.closed) {
      this.closed = true;
      this.lostError = err ?? new ConnectionError(`connection to ${this.server} is closed`);
    }
    this.stopWatchdog();
    this.socket.destroy();
    this.abortCommand(this.lostError!);
  }

  /**
   * Gives up a command in progress: a CancelRequest, so that the server
   * stops at once even where it does not look at the socket (waiting for a
   * checkpoint), then the connection is dropped. Resolves once the request
   * is sent or could not be (at most about a second).
   */
  abort(err?: Error): Promise<void> {
    const running = this.handler !== null && !this.closed;
    this.destroy(err);
    return running ? this.sendCancel() : Promise.resolve();
  }

  /** CancelRequest (protocol: length 16, code 80877102, pid, secret key) on a new connection, as libpq's PQcancel. */
  private sendCancel(): Promise<void> {
    const c = this.client as unknown as { processID: number | null; secretKey: number | null; host: string; port: number };
    if (!c.processID || c.secretKey == null) return Promise.resolve();
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(c.processID, 8);
    msg.writeInt32BE(c.secretKey, 12);
    return new Promise((resolve) => {
      const sock = c.host?.startsWith('/') ? netConnect(`${c.host}/.s.PGSQL.${c.port}`) : netConnect(c.port, c.host);
      const timer = setTimeout(() => sock.destroy(), 1000);
      timer.unref();
      sock.on('connect', () => sock.end(msg));
      sock.on('error', () => {});
      sock.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private checkSilence(): void {
    if (!this.handler || this.paused || this.silenceAllowed || this.closed) return;
    const silent = Date.now() - this.lastHeard;
    if (silent < this.timeoutMs) return;
    this.fail(
      new ConnectionError(
        `no response from server at ${this.server} for ${Math.round(silent / 1000)} s (limit ${this.timeoutMs / 1000} s, --timeout); ` +
          'the server or the network is not responding',
      ),
    );
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /** The error for a socket that went away: the server's own words when it said why. */
  private lost(err?: Error): ConnectionError {
    let why = this.farewell;
    if (!why && err) {
      const e = err as NodeJS.ErrnoException;
      why = e.code && /^E[A-Z]+$/.test(e.code) ? systemReason(err) : err.message;
      if (why === 'Connection terminated unexpectedly') why = null;
    }
    return new ConnectionError(`connection to server at ${this.server} lost: ${why ?? 'server closed the connection unexpectedly (it probably shut down or crashed)'}`, {
      cause: err,
    });
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.lostError = err;
    this.stopWatchdog();
    this.socket.destroy();
    this.abortCommand(err);
  }

  private abortCommand(err: Error): void {
    const settle = this.settle;
    if (settle) settle(err);
  }

  private onMessage(code: number, body: Buffer): void {
    const h = this.handler;
    switch (code) {
      case 0x64: // 'd' CopyData
        h?.copyData?.(body);
        return;
      case 0x44: // 'D' DataRow
        h?.dataRow?.(parseDataRow(body));
        return;
      case 0x4e: {
        // 'N' NoticeResponse: may come between CopyData messages
        const n = parseNotice(body);
        // A backend ended by an immediate shutdown or another process's crash may say goodbye with a
        // WARNING (57P01/57P02) just before the socket closes (walsenders usually die silently):
        // that is the error's cause, not a warning of its own.
        if (/^57P0/.test(n.sqlstate)) {
          this.farewell = n.message;
          return;
        }
        h?.notice?.(n);
        return;
      }
      case 0x54: // 'T'
        h?.rowDescription?.(parseRowDescription(body));
        return;
      case 0x43: // 'C'
        h?.commandComplete?.(body.toString('utf8', 0, Math.max(0, body.length - 1)));
        return;
      case 0x48: // 'H'
        h?.copyStart?.('out');
        return;
      case 0x57: // 'W'
        h?.copyStart?.('both');
        return;
      case 0x47: // 'G'
        h?.copyStart?.('in');
        return;
      case 0x63: // 'c'
        h?.copyDone?.();
        return;
      case 0x45: {
        // 'E' ErrorResponse: the command is over; ReadyForQuery follows.
        const n = parseNotice(body);
        if ((n.severity === 'FATAL' || n.severity === 'PANIC') && isSessionEnd(n.sqlstate)) {
          // Shutdown (fast or smart), pg_terminate_backend, …: the connection is what failed.
          this.farewell = n.message;
          this.fail(this.lost());
          return;
        }
        const err = new ServerError(n.message + (n.detail ? ` (${n.detail})` : ''), n.sqlstate);
        if (!this.settle) {
          this.fail(err);
          return;
        }
        if (n.severity === 'FATAL' || n.severity === 'PANIC') {
          this.fail(err);
          return;
        }
        this.pendingError ??= err;
        return;
      }
      case 0x5a: {
        // 'Z' ReadyForQuery
        const settle = this.settle;
        const err = this.pendingError;
        this.pendingError = null;
        settle?.(err ?? undefined);
        return;
      }
      case 0x53: // 'S' ParameterStatus
      case 0x41: // 'A' NotificationResponse
      case 0x49: // 'I' EmptyQueryResponse
        return;
      default:
        throw new ProtocolError(`unexpected message type '${String.fromCharCode(code)}' from server`);
    }
  }
}
