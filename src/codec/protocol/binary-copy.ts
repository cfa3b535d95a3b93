/**
 * Decodes `COPY … TO STDOUT (FORMAT binary)` output: how the parallel source
 * receives bytea without the hex doubling of text results.
 *
 * In:  CopyData payloads, split anywhere (the server sends one row per
 *      message, the header with the first, but nothing here relies on it).
 * Out: rows, each an array of field values (Buffer, or null for SQL NULL),
 *      handed to `onRow` in order. Field buffers are subarrays of the input
 *      when a row lies inside one payload, else one copy.
 * Format (PostgreSQL docs, "COPY — Binary Format"): 11-byte signature
 *      `PGCOPY\n\377\r\n\0`, int32 flags, int32 header-extension length and
 *      its bytes; then per row int16 field count (-1: trailer), per field
 *      int32 length (-1: NULL) and the bytes.
 * Errors: ProtocolError for a bad signature, a field longer than `maxField`,
 *      more fields than expected, or data after the trailer; `end()` throws
 *      when the stream stopped inside a row or before the trailer.
 */
import { ProtocolError } from '../../errors';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class BinaryCopyDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private finished = false;

  constructor(
    private readonly onRow: (fields: (Buffer | null)[]) => void,
    private readonly maxField = 64 * 1024 * 1024,
  ) {}

  write(payload: Buffer): void {
    if (this.finished && payload.length > 0) throw new ProtocolError('data after the end of binary COPY output');
    this.pending = this.pending.length === 0 ? payload : Buffer.concat([this.pending, payload]);
    let pos = 0;
    const buf = this.pending;
    if (!this.headerDone) {
      if (buf.length < 19) return;
      if (!buf.subarray(0, 11).equals(SIGNATURE)) throw new ProtocolError('binary COPY output without its signature');
      const ext = buf.readUInt32BE(15);
      if (buf.length < 19 + ext) return;
      pos = 19 + ext;
      this.headerDone = true;
    }
    while (pos + 2 <= buf.length) {
      const count = buf.readInt16BE(pos);
      if (count === -1) {
        this.finished = true;
        if (pos + 2 !== buf.length) throw new ProtocolError('data after the end of binary COPY output');
        pos += 2;
        break;
      }
      if (count < 0) throw new ProtocolError(`binary COPY row with ${count} fields`);
      const fields: (Buffer | null)[] = [];
      let at = pos + 2;
      let whole = true;
      for (let i = 0; i < count; i++) {
        if (at + 4 > buf.length) {
          whole = false;
          break;
        }
        const len = buf.readInt32BE(at);
        at += 4;
        if (len === -1) {
          fields.push(null);
          continue;
        }
        if (len < 0 || len > this.maxField) throw new ProtocolError(`binary COPY field of ${len} bytes`);
        if (at + len > buf.length) {
          whole = false;
          break;
        }
        fields.push(buf.subarray(at, at + len));
        at += len;
      }
      if (!whole) break;
      pos = at;
      this.onRow(fields);
    }
    // What is left is a partial row: kept as its own copy so the input can go.
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }

  /** The output is over: it must have ended with the trailer. */
  end(): void {
    if (!this.finished) throw new ProtocolError('binary COPY output ended inside a row or without its trailer');
  }
}
