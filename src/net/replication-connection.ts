/**
 * A replication connection: `pg` opens it (src/net/pg-session.ts:
 * authentication; TLS as libpq's sslmode says, see connect()), then we read
 * the socket with our own parser and speak the simple-query and copy
 * sub-protocols ourselves.
 *
 * One command at a time: `run(sql, handler)` feeds every message of the
 * command to the handler (src/codec/protocol/command-messages.ts) and
 * resolves at ReadyForQuery, or rejects with the server's error (ServerError
 * with its SQLSTATE). `pause()`/`resume()` stop reading the socket, which is
 * how backpressure reaches the server.
 *
 * A dead or stuck server must not hang a backup:
 * - `timeoutMs` bounds connecting (unless connect_timeout is set) and, while
 *   a command runs and we are reading, the time without a byte from the
 *   server (src/net/silence-watchdog.ts; `allowSilence()` suspends it).
 * - TCP keepalives (conninfo.ts: 10 s idle, then libuv's 1 s × 10 probes)
 *   notice a vanished host or network when nothing else would.
 * - A server that shuts down or crashes closes the socket: noticed as soon
 *   as we read on (a paused socket first yields what it had buffered), and
 *   the error names the shutdown when the server said so first.
 * `abort()` (destroying a backup mid-command) also sends a CancelRequest
 * (src/net/cancel-request.ts): a walsender waiting for a checkpoint would
 * otherwise notice the closed socket only when the checkpoint is over.
 */
import type { ClientConfig } from 'pg';
import type { Socket } from 'node:net';
import { BackendParser, frontendMessage, queryMessage, type ServerNotice } from '../codec/protocol/backend-parser';
import { dispatchMessage, type BackendHandler, type CommandHandler } from '../codec/protocol/command-messages';
import { ConnectionError, PgbbError, ProtocolError, ServerError } from '../errors';
import { describeServer, type PgbbClientConfig } from './conninfo';
import { retryWith } from './tls-options';
import { openPgSession, type PgSession } from './pg-session';
import { SilenceWatchdog } from './silence-watchdog';
import { sendCancelRequest } from './cancel-request';
import { abortReason, connectError, isSessionEnd, lostError, silenceError } from './connection-errors';

export type { CommandHandler } from '../codec/protocol/command-messages';

export interface ConnectOptions {
  /**
   * Milliseconds: the limit on connecting (unless the conninfo's
   * connect_timeout says otherwise) and the watchdog's limit on silence
   * during a command. 0 or undefined: no limit.
   */
  timeoutMs?: number;
  /** Aborting gives up a connection attempt at once. */
  signal?: AbortSignal;
  /**
   * Read into recycled slabs (src/io/slab-pool.ts): every Buffer a handler
   * gets is then valid only while its bytes are retained. For the backup
   * source, whose stages give back what they wrote; plain TCP only.
   */
  slabs?: boolean;
}

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
}

export class ReplicationConnection {
  private readonly parser: BackendParser;
  private readonly socket: Socket;
  private handler: CommandHandler | null = null;
  /** The handler's methods plus ours, made once per command (not per message). */
  private dispatch: BackendHandler;
  private settle: ((err?: Error) => void) | null = null;
  private pendingError: ServerError | null = null;
  private closed = false;
  private lostError: Error | null = null;
  private readonly watchdog: SilenceWatchdog;
  /** What the server said when it announced its shutdown (e.g. "terminating connection due to immediate shutdown command"). */
  private farewell: string | null = null;

  private constructor(
    private readonly session: PgSession,
    readonly server: string,
    private readonly timeoutMs: number,
  ) {
    this.socket = session.socket;
    this.dispatch = this.dispatchTo(null);
    this.parser = new BackendParser((code, body) => dispatchMessage(code, body, this.dispatch), {
      wantParts: () => this.handler?.copyDataPart !== undefined,
      part: (part, first, last) => this.handler?.copyDataPart?.(part, first, last),
      reuseJoined: () => this.handler?.copyDataTransient === true,
    });
    session.read((chunk: Buffer) => {
      this.watchdog.heard();
      try {
        this.parser.write(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    session.onLost((err) => this.fail(lostError(this.server, this.farewell, err)));
    this.watchdog = new SilenceWatchdog(
      timeoutMs,
      () => this.handler !== null && !this.closed,
      (silent) => this.fail(silenceError(this.server, silent, this.timeoutMs)),
    );
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
    const signal = opts.signal;
    if (signal?.aborted) throw abortReason(signal);
    let socketOf: (() => Socket) | null = null;
    const onAbort = () => socketOf?.().destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const session = await openPgSession(connectLimit ? { ...config, connectionTimeoutMillis: connectLimit } : config, (s) => (socketOf = s), opts.slabs);
      return new ReplicationConnection(session, where, timeoutMs);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw connectError(err, where, connectLimit);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs one command; resolves at ReadyForQuery. */
  run(sql: string, handler: CommandHandler = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.lostError ?? new ConnectionError(`connection to ${this.server} is closed`));
    if (this.handler) return Promise.reject(new ProtocolError('another command is in progress on this connection'));
    return new Promise<void>((resolve, reject) => {
      this.handler = handler;
      this.dispatch = this.dispatchTo(handler);
      this.pendingError = null;
      this.watchdog.heard();
      this.settle = (err) => {
        this.handler = null;
        this.dispatch = this.dispatchTo(null);
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
    this.watchdog.pause();
    this.socket.pause();
  }

  resume(): void {
    this.watchdog.resume();
    this.socket.resume();
  }

  /**
   * While true, the watchdog lets the server stay silent (BASE_BACKUP's
   * checkpoint, the wait for WAL archiving).
   */
  allowSilence(on: boolean): void {
    this.watchdog.allowSilence(on);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The server process's pid (BackendKeyData), e.g. to name a temporary slot. */
  get backendPid(): number | undefined {
    return this.session.pid;
  }

  /** Ends the session politely (Terminate); the server aborts any backup still running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchdog.stop();
    this.lostError = new ConnectionError(`connection to ${this.server} is closed`);
    this.socket.resume();
    await Promise.race([this.session.end(), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.socket.destroy();
    this.abortCommand(this.lostError);
  }

  /** Drops the connection at once. */
  destroy(err?: Error): void {
    if (!this.closed) {
      this.closed = true;
      this.lostError = err ?? new ConnectionError(`connection to ${this.server} is closed`);
    }
    this.watchdog.stop();
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
    const key = this.session.cancelKey;
    return running && key ? sendCancelRequest(key) : Promise.resolve();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.lostError = err;
    this.watchdog.stop();
    this.socket.destroy();
    this.abortCommand(err);
  }

  private abortCommand(err: Error): void {
    const settle = this.settle;
    if (settle) settle(err);
  }

  private dispatchTo(h: CommandHandler | null): BackendHandler {
    return {
      copyData: h?.copyData?.bind(h),
      dataRow: h?.dataRow?.bind(h),
      rowDescription: h?.rowDescription?.bind(h),
      commandComplete: h?.commandComplete?.bind(h),
      copyStart: h?.copyStart?.bind(h),
      copyDone: h?.copyDone?.bind(h),
      notice: (n) => this.onNotice(n),
      error: (n) => this.onError(n),
      ready: () => this.onReady(),
    };
  }

  private onNotice(n: ServerNotice): void {
    // A backend ended by an immediate shutdown or another process's crash may say goodbye with a
    // WARNING (57P01/57P02) just before the socket closes (walsenders usually die silently):
    // that is the error's cause, not a warning of its own.
    if (/^57P0/.test(n.sqlstate)) {
      this.farewell = n.message;
      return;
    }
    this.handler?.notice?.(n);
  }

  /** ErrorResponse: the command is over, ReadyForQuery follows — unless the session is. */
  private onError(n: ServerNotice): void {
    const fatal = n.severity === 'FATAL' || n.severity === 'PANIC';
    if (fatal && isSessionEnd(n.sqlstate)) {
      // Shutdown (fast or smart), pg_terminate_backend, …: the connection is what failed.
      this.farewell = n.message;
      this.fail(lostError(this.server, this.farewell));
      return;
    }
    const err = new ServerError(n.message + (n.detail ? ` (${n.detail})` : ''), n.sqlstate);
    if (!this.settle || fatal) {
      this.fail(err);
      return;
    }
    this.pendingError ??= err;
  }

  private onReady(): void {
    const settle = this.settle;
    const err = this.pendingError;
    this.pendingError = null;
    settle?.(err ?? undefined);
  }
}
