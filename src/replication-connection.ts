/**
 * A replication connection: `pg` opens it (authentication, TLS, .pgpass,
 * PG* variables), then we take over the socket and speak the simple-query and
 * copy sub-protocols ourselves, because pg-protocol knows no CopyBoth and
 * recycles the buffers its CopyData slices point into.
 *
 * One command at a time: `run(sql, handler)` feeds every message of the
 * command to the handler and resolves at ReadyForQuery, or rejects with the
 * server's error. `pause()`/`resume()` stop reading the socket, which is how
 * backpressure reaches the server.
 */
import { Client, type ClientConfig } from 'pg';
import type { Socket } from 'node:net';
import {
  BackendParser,
  frontendMessage,
  parseDataRow,
  parseNotice,
  parseRowDescription,
  queryMessage,
  type ServerNotice,
} from './protocol/backend-parser';
import { AuthError, ConnectionError, PgbbError, ProtocolError, ServerError } from './errors';
import { describeServer } from './conninfo';

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
function connectError(err: unknown, where: string): PgbbError {
  const e = err as { code?: string; message?: string };
  const msg = `connection to server at ${where} failed: ${e.message ?? String(err)}`;
  if (e.code && /^28/.test(e.code)) return new AuthError(msg, { cause: err });
  if (e.code === '42501') return new AuthError(msg, { cause: err });
  if (e.code === '53300') return new PgbbError('wal_senders', msg, { cause: err });
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return new ServerError(msg, e.code, 'connection', { cause: err });
  return new ConnectionError(msg, { cause: err });
}

export class ReplicationConnection {
  private readonly parser: BackendParser;
  private handler: CommandHandler | null = null;
  private settle: ((err?: Error) => void) | null = null;
  private pendingError: ServerError | null = null;
  private closed = false;
  private lostError: Error | null = null;

  private constructor(
    private readonly client: Client,
    private readonly socket: Socket,
    readonly server: string,
  ) {
    this.parser = new BackendParser((code, body) => this.onMessage(code, body));
    // Take the socket from pg's parser for good.
    for (const l of socket.listeners('data')) socket.removeListener('data', l as (...a: unknown[]) => void);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.write(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    client.on('error', (err) => this.fail(new ConnectionError(`connection to server at ${server} lost: ${err.message}`, { cause: err })));
    client.on('end', () => this.fail(new ConnectionError(`server at ${server} closed the connection unexpectedly`)));
  }

  static async connect(config: ClientConfig): Promise<ReplicationConnection> {
    const where = `"${describeServer(config)}"`;
    const client = new Client(config);
    // pg emits 'error' on the client too; without a listener Node would throw.
    const early = (_: unknown) => {};
    client.on('error', early);
    try {
      await client.connect();
    } catch (err) {
      client.removeListener('error', early);
      throw connectError(err, where);
    }
    client.removeListener('error', early);
    const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    return new ReplicationConnection(client, socket, where);
  }

  /** Runs one command; resolves at ReadyForQuery. */
  run(sql: string, handler: CommandHandler = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.lostError ?? new ConnectionError(`connection to ${this.server} is closed`));
    if (this.handler) return Promise.reject(new ProtocolError('another command is in progress on this connection'));
    return new Promise<void>((resolve, reject) => {
      this.handler = handler;
      this.pendingError = null;
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
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
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
    this.socket.destroy();
    this.abortCommand(this.lostError!);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.lostError = err;
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
