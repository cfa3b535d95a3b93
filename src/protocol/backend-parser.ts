/**
 * Frames PostgreSQL backend messages out of socket chunks.
 *
 * In:  Buffers as they come off the socket, split anywhere.
 * Out: `(code, body)` for each whole message, synchronously, in order; `body`
 *      excludes the 5-byte header.
 *
 * A message that lies inside one socket chunk is handed out as a subarray of
 * that chunk (Node allocates a fresh Buffer per socket read, so it stays
 * valid); only a message split across chunks is copied once into a buffer of
 * its exact size. pg-protocol's parser, by contrast, reuses its buffer, so its
 * CopyData slices cannot be held across reads — which a streaming backup must.
 */
import { ProtocolError } from '../errors';

/** Larger than any legitimate message in the streams we read (CopyData ≤ 128 KiB). */
const MAX_MESSAGE = 64 * 1024 * 1024;

export type MessageHandler = (code: number, body: Buffer) => void;

export class BackendParser {
  private header = Buffer.alloc(5);
  private headerHave = 0;
  private body: Buffer | null = null;
  private bodyHave = 0;
  private code = 0;

  constructor(private readonly onMessage: MessageHandler) {}

  /** True between messages: nothing partial is held. */
  get idle(): boolean {
    return this.headerHave === 0 && this.body === null;
  }

  write(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.body !== null) {
        const take = Math.min(this.body.length - this.bodyHave, len - pos);
        chunk.copy(this.body, this.bodyHave, pos, pos + take);
        this.bodyHave += take;
        pos += take;
        if (this.bodyHave === this.body.length) {
          const body = this.body;
          this.body = null;
          this.onMessage(this.code, body);
        }
        continue;
      }
      if (this.headerHave === 0 && len - pos >= 5) {
        // Fast path: the header is whole in this chunk.
        const code = chunk[pos];
        const size = this.checkLength(code, chunk.readUInt32BE(pos + 1));
        const start = pos + 5;
        if (len - start >= size) {
          pos = start + size;
          this.onMessage(code, chunk.subarray(start, pos));
        } else {
          this.code = code;
          this.body = Buffer.allocUnsafe(size);
          this.bodyHave = len - start;
          chunk.copy(this.body, 0, start, len);
          pos = len;
        }
        continue;
      }
      const take = Math.min(5 - this.headerHave, len - pos);
      chunk.copy(this.header, this.headerHave, pos, pos + take);
      this.headerHave += take;
      pos += take;
      if (this.headerHave === 5) {
        this.headerHave = 0;
        this.code = this.header[0];
        const size = this.checkLength(this.code, this.header.readUInt32BE(1));
        if (size === 0) {
          this.onMessage(this.code, Buffer.alloc(0));
        } else {
          this.body = Buffer.allocUnsafe(size);
          this.bodyHave = 0;
        }
      }
    }
  }

  private checkLength(code: number, length: number): number {
    if (length < 4 || length - 4 > MAX_MESSAGE) {
      throw new ProtocolError(
        `invalid message length ${length} for message type '${String.fromCharCode(code)}' from server`,
      );
    }
    return length - 4;
  }
}

/** Fields of an ErrorResponse / NoticeResponse body. */
export interface ServerNotice {
  severity: string;
  sqlstate: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function parseNotice(body: Buffer): ServerNotice {
  const out: ServerNotice = { severity: '', sqlstate: '', message: '' };
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const field = body[pos++];
    const end = body.indexOf(0, pos);
    if (end < 0) break;
    const value = body.toString('utf8', pos, end);
    pos = end + 1;
    switch (field) {
      case 0x56: // 'V' non-localized severity
        out.severity = value;
        break;
      case 0x53: // 'S'
        if (!out.severity) out.severity = value;
        break;
      case 0x43: // 'C'
        out.sqlstate = value;
        break;
      case 0x4d: // 'M'
        out.message = value;
        break;
      case 0x44: // 'D'
        out.detail = value;
        break;
      case 0x48: // 'H'
        out.hint = value;
        break;
    }
  }
  return out;
}

/** Column names of a RowDescription. */
export function parseRowDescription(body: Buffer): string[] {
  const count = body.readUInt16BE(0);
  const names: string[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, pos);
    if (end < 0) throw new ProtocolError('malformed RowDescription from server');
    names.push(body.toString('utf8', pos, end));
    pos = end + 1 + 18;
  }
  return names;
}

/** Text values of a DataRow (null for SQL NULL). */
export function parseDataRow(body: Buffer): (string | null)[] {
  const count = body.readUInt16BE(0);
  const values: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      values.push(null);
    } else {
      if (pos + len > body.length) throw new ProtocolError('malformed DataRow from server');
      values.push(body.toString('utf8', pos, pos + len));
      pos += len;
    }
  }
  return values;
}

/** A frontend message: code byte, int32 length, body. */
export function frontendMessage(code: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code.charCodeAt(0);
  out.writeUInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** A simple Query message. */
export function queryMessage(sql: string): Buffer {
  return frontendMessage('Q', Buffer.from(sql + '\0', 'utf8'));
}
