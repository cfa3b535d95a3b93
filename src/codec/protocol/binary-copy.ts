/**
 * Decodes `COPY … TO STDOUT (FORMAT binary)` output: how the parallel source
 * receives bytea without the hex doubling of text results.
 *
 * In:  CopyData payloads, split anywhere (the server sends one row per
 *      message, the header with the first, but nothing here relies on it).
 * Out: rows, each an array of field values (Buffer, or null for SQL NULL),
 *      handed to `onRow` in order. A field inside one payload is a subarray
 *      of it; one split across payloads (CopyData taken in parts, as the
 *      parallel source does for 1 MiB rows) is copied once into a buffer of
 *      its length — never regrown, never concatenated again per part.
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

type Phase = 'header' | 'extension' | 'count' | 'length' | 'data' | 'done';

export class BinaryCopyDecoder {
  private phase: Phase = 'header';
  /** Header, field count or field length bytes gathered across payloads. */
  private readonly small = Buffer.alloc(19);
  private smallHave = 0;
  private skip = 0;
  private fields: (Buffer | null)[] = [];
  private count = 0;
  /** A field split across payloads: its own buffer of its full length, filled as parts come. */
  private field: Buffer | null = null;
  private fieldLength = 0;
  private fieldHave = 0;

  constructor(
    private readonly onRow: (fields: (Buffer | null)[]) => void,
    private readonly maxField = 64 * 1024 * 1024,
  ) {}

  /** Payloads (or parts of them) in order; each byte is copied at most once, into a split field's buffer. */
  write(payload: Buffer): void {
    let pos = 0;
    const len = payload.length;
    while (pos < len) {
      if (this.phase === 'done') throw new ProtocolError('data after the end of binary COPY output');
      if (this.phase === 'extension') {
        const take = Math.min(this.skip, len - pos);
        this.skip -= take;
        pos += take;
        if (this.skip === 0) this.phase = 'count';
        continue;
      }
      if (this.phase === 'data') {
        const want = this.fieldLength - this.fieldHave;
        if (this.field === null && len - pos >= want) {
          this.addField(payload.subarray(pos, pos + want));
          pos += want;
          continue;
        }
        this.field ??= Buffer.allocUnsafe(this.fieldLength);
        const take = Math.min(want, len - pos);
        payload.copy(this.field, this.fieldHave, pos, pos + take);
        this.fieldHave += take;
        pos += take;
        if (this.fieldHave === this.fieldLength) {
          const f = this.field;
          this.field = null;
          this.addField(f);
        }
        continue;
      }
      const need = this.phase === 'header' ? 19 : this.phase === 'count' ? 2 : 4;
      let bytes: Buffer;
      if (this.smallHave === 0 && len - pos >= need) {
        bytes = payload.subarray(pos, pos + need);
        pos += need;
      } else {
        const take = Math.min(need - this.smallHave, len - pos);
        payload.copy(this.small, this.smallHave, pos, pos + take);
        this.smallHave += take;
        pos += take;
        if (this.smallHave < need) continue;
        this.smallHave = 0;
        bytes = this.small;
      }
      this.parsed(bytes);
    }
  }

  /** The output is over: it must have ended with the trailer. */
  end(): void {
    if (this.phase !== 'done') throw new ProtocolError('binary COPY output ended inside a row or without its trailer');
  }

  /** A whole header (19 bytes), field count (2) or field length (4). */
  private parsed(b: Buffer): void {
    if (this.phase === 'header') {
      if (!b.subarray(0, 11).equals(SIGNATURE)) throw new ProtocolError('binary COPY output without its signature');
      this.skip = b.readUInt32BE(15);
      if (this.skip > this.maxField) throw new ProtocolError(`binary COPY header extension of ${this.skip} bytes`);
      this.phase = this.skip > 0 ? 'extension' : 'count';
      return;
    }
    if (this.phase === 'count') {
      const count = b.readInt16BE(0);
      if (count === -1) {
        this.phase = 'done';
        return;
      }
      if (count < 0) throw new ProtocolError(`binary COPY row with ${count} fields`);
      this.count = count;
      this.fields = [];
      if (count === 0) this.rowDone();
      else this.phase = 'length';
      return;
    }
    const length = b.readInt32BE(0);
    if (length === -1) return this.addField(null);
    if (length < 0 || length > this.maxField) throw new ProtocolError(`binary COPY field of ${length} bytes`);
    if (length === 0) return this.addField(Buffer.alloc(0));
    this.fieldLength = length;
    this.fieldHave = 0;
    this.phase = 'data';
  }

  private addField(f: Buffer | null): void {
    this.fields.push(f);
    if (this.fields.length === this.count) this.rowDone();
    else this.phase = 'length';
  }

  private rowDone(): void {
    const fields = this.fields;
    this.fields = [];
    this.phase = 'count';
    this.onRow(fields);
  }
}
