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
 * its own. pg-protocol's parser, by contrast, reuses its buffer, so its
 * CopyData slices cannot be held across reads — which a streaming backup must.
 *
 * With a `copyPart` handler, a CopyData message split across chunks is not
 * copied at all: its body is handed out in parts, each a subarray of the
 * socket chunk it came in (`wantParts()` says when; a base backup's 'd'
 * messages are ~32 KiB and Node reads 64 KiB, so about half of them are
 * split, and copying them was the receive path's largest cost).
 *
 * Memory: a split message's buffer has its exact size up to FIRST_BUFFER
 * (every legitimate message); beyond, it starts at FIRST_BUFFER and doubles
 * as bytes arrive, so what a corrupt or hostile length field declares (up to
 * MAX_MESSAGE) is never allocated before about half of it has come. Lengths
 * under 4 or over MAX_MESSAGE are a ProtocolError at once.
 */
import { ProtocolError } from '../../errors';

/** Larger than any legitimate message in the streams we read (CopyData ≤ 128 KiB). */
const MAX_MESSAGE = 64 * 1024 * 1024;
/** Split messages up to this size get their exact buffer at once. */
const FIRST_BUFFER = 256 * 1024;

export type MessageHandler = (code: number, body: Buffer) => void;

/**
 * A split CopyData body in parts, in order: `first` on the part holding its
 * first byte, `last` on the one holding its last (one part can be both).
 * Parts are never empty.
 */
export interface CopyPartHandler {
  /** Asked when a split CopyData starts: hand this one out in parts? */
  wantParts(): boolean;
  part(part: Buffer, first: boolean, last: boolean): void;
  /**
   * Asked when a split CopyData is joined instead: does its handler keep
   * nothing past the call? Then the next one is joined into the same buffer
   * (a WAL stream's 128 KiB XLogData messages, written at once: no garbage
   * buffer per message).
   */
  reuseJoined?(): boolean;
}

export class BackendParser {
  private header = Buffer.alloc(5);
  private headerHave = 0;
  /** The partial message body (its first bodyHave bytes are filled), or null between messages. */
  private body: Buffer | null = null;
  private bodySize = 0;
  private bodyHave = 0;
  private code = 0;
  /** A CopyData body is being handed out in parts: bodySize and bodyHave count it. */
  private streaming = false;
  /** The last joined CopyData's buffer, when its handler keeps nothing (reuseJoined). */
  private spare: Buffer | null = null;
  private reusing = false;

  constructor(
    private readonly onMessage: MessageHandler,
    private readonly copyPart?: CopyPartHandler,
  ) {}

  /** True between messages: nothing partial is held. */
  get idle(): boolean {
    return this.headerHave === 0 && this.body === null && !this.streaming;
  }

  write(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.streaming) {
        const take = Math.min(this.bodySize - this.bodyHave, len - pos);
        const first = this.bodyHave === 0;
        this.bodyHave += take;
        const last = this.bodyHave === this.bodySize;
        if (last) this.streaming = false;
        this.copyPart!.part(chunk.subarray(pos, pos + take), first, last);
        pos += take;
        continue;
      }
      if (this.body !== null) {
        const take = Math.min(this.bodySize - this.bodyHave, len - pos);
        this.reserve(this.bodyHave + take);
        chunk.copy(this.body, this.bodyHave, pos, pos + take);
        this.bodyHave += take;
        pos += take;
        if (this.bodyHave === this.bodySize) {
          const body = this.body;
          this.body = null;
          this.onMessage(this.code, body.length === this.bodySize ? body : body.subarray(0, this.bodySize));
          if (this.reusing) this.spare = body;
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
        } else if (this.startParts(code, size)) {
          pos = start;
        } else {
          this.code = code;
          this.startBody(size);
          this.reserve(len - start);
          chunk.copy(this.body!, 0, start, len);
          this.bodyHave = len - start;
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
        } else if (!this.startParts(this.code, size)) {
          this.startBody(size);
        }
      }
    }
  }

  /** A split CopyData the handler takes in parts: the body loop hands them out. */
  private startParts(code: number, size: number): boolean {
    if (code !== 0x64 || !this.copyPart?.wantParts()) return false;
    this.streaming = true;
    this.bodySize = size;
    this.bodyHave = 0;
    return true;
  }

  private startBody(size: number): void {
    this.reusing = this.code === 0x64 && this.copyPart?.reuseJoined?.() === true;
    const want = Math.min(size, FIRST_BUFFER);
    this.body = this.reusing && this.spare && this.spare.length >= want ? this.spare : Buffer.allocUnsafe(want);
    this.spare = null;
    this.bodySize = size;
    this.bodyHave = 0;
  }

  /** Grows the body buffer (doubling, at most to the message size) to hold `need` bytes. */
  private reserve(need: number): void {
    const body = this.body!;
    if (need <= body.length) return;
    let cap = body.length;
    while (cap < need) cap *= 2;
    const grown = Buffer.allocUnsafe(Math.min(cap, this.bodySize));
    body.copy(grown, 0, 0, this.bodyHave);
    this.body = grown;
  }

  private checkLength(code: number, length: number): number {
    if (length < 4 || length - 4 > MAX_MESSAGE) {
      throw new ProtocolError(`invalid message length ${length} for message type ${messageType(code)} from server`);
    }
    return length - 4;
  }
}

/** A message type byte for messages: 'X' when printable, else 0xNN (a corrupt stream can hold a newline or NUL there). */
export function messageType(code: number): string {
  return code > 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, '0')}`;
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

/** Column names of a RowDescription. ProtocolError when the body is shorter than its fields say. */
export function parseRowDescription(body: Buffer): string[] {
  const bad = () => new ProtocolError('malformed RowDescription from server');
  if (body.length < 2) throw bad();
  const count = body.readUInt16BE(0);
  const names: string[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, pos);
    // Each column: name\0, then table OID, column number, type OID, size, modifier, format (18 bytes).
    if (end < 0 || end + 1 + 18 > body.length) throw bad();
    names.push(body.toString('utf8', pos, end));
    pos = end + 1 + 18;
  }
  return names;
}

/** Text values of a DataRow (null for SQL NULL). ProtocolError when the body is shorter than its fields say. */
export function parseDataRow(body: Buffer): (string | null)[] {
  const bad = () => new ProtocolError('malformed DataRow from server');
  if (body.length < 2) throw bad();
  const count = body.readUInt16BE(0);
  const values: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > body.length) throw bad();
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      values.push(null);
    } else {
      if (len < 0 || pos + len > body.length) throw bad();
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
