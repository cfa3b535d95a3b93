/**
 * LZ4 frame decoder (the `.lz4` format of lz4(1) and of pg_basebackup's
 * `--compress client-lz4|server-lz4`; lz4's doc/lz4_Frame_format.md and
 * doc/lz4_Block_format.md; blocks by lz4-block.ts), pure: bytes are pushed in, decoded blocks are
 * pulled out one at a time with next().
 *
 * Why pgbb's own: of the npm libraries, lz4-napi and lz4-wasm-nodejs decode
 * a whole frame held in memory (a base.tar.lz4 is the size of the cluster),
 * and `lz4` (node-lz4) streams but is a native addon last released in 2020.
 * The format is small; decoding it here keeps memory at one block.
 *
 * Memory: the input held is at most one block (≤ the frame's maximum block
 * size, 4 MiB at most) plus the last chunk pushed; blocks are decoded in one
 * reused buffer (window + maximum block) and each is handed on as a copy of
 * its own size, so what waits downstream is counted at what it holds.
 * Nothing read is trusted: every size is checked against the frame's own
 * maximum before anything is allocated for it.
 *
 * Checked: magic, version, reserved bits, header checksum, block sizes,
 * every literal run and match inside its block and window, block checksums
 * and the content checksum when the frame carries them, the content size
 * when declared. Frames may be concatenated; skippable frames are skipped
 * (without holding their bytes). Dictionary frames are refused (pgbb has no
 * dictionary to give).
 *
 * Errors: CompressionError naming `where`: "corrupt lz4 data in …: why
 * (at compressed byte N)", and from finish() "truncated" when the input
 * ends inside a frame or holds no frame at all.
 */
import { Xxh32, xxh32 } from '@node-rs/xxhash';
import { CompressionError } from '../errors';
import { BlockError, decodeBlock } from './lz4-block';

const MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;
const WINDOW = 64 * 1024;
const BLOCK_MAX: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

type State = 'magic' | 'descriptor' | 'block-size' | 'block' | 'content-checksum' | 'skip-size' | 'skip';

interface Frame {
  independent: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
  contentSize: bigint | null;
  blockMax: number;
  produced: bigint;
  hash: Xxh32 | null;
}

export class Lz4FrameDecoder {
  private readonly where: string;
  /** Input held, from pieces[head] on (an index, not shift(): a block pushed a byte at a time stays linear). */
  private pieces: Buffer[] = [];
  private head = 0;
  private held = 0;
  /** Where compressed blocks are decoded (window + the frame's maximum block), reused: each output is copied out at its own size, so a stream of tiny blocks cannot pin a block-sized buffer each. */
  private scratch: Buffer | null = null;
  private state: State = 'magic';
  private frame: Frame | null = null;
  /** The frame descriptor's length once FLG is known; the current block's stored size and whether it is compressed. */
  private need = 4;
  private blockStored = 0;
  private blockCompressed = true;
  private skipLeft = 0;
  /** Up to WINDOW bytes of output that a linked block may copy from. */
  private history: Buffer = Buffer.alloc(0);
  private consumed = 0;
  private frames = 0;

  constructor(where: string) {
    this.where = where;
  }

  /** Compressed bytes taken so far, and whole frames decoded. */
  get bytesIn(): number {
    return this.consumed;
  }

  get framesDone(): number {
    return this.frames;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pieces.push(chunk);
    this.held += chunk.length;
  }

  private get first(): Buffer {
    return this.pieces[this.head];
  }

  private dropFirst(): void {
    this.head++;
    if (this.head === this.pieces.length) (this.pieces = []), (this.head = 0);
    else if (this.head >= 1024 && this.head * 2 >= this.pieces.length) (this.pieces = this.pieces.slice(this.head)), (this.head = 0);
  }

  /** The next decoded block (never empty), or null when more input is needed. */
  next(): Buffer | null {
    for (;;) {
      if (this.state === 'skip') {
        if (!this.discard()) return null;
        this.state = 'magic';
        this.need = 4;
        continue;
      }
      if (this.held < this.need) return null;
      const out = this.step(this.take(this.need));
      if (out && out.length > 0) return out;
    }
  }

  /** At the end of input: refuses a frame cut short, or input that held no frame. */
  finish(): void {
    if (this.state !== 'magic' || this.held > 0) {
      throw new CompressionError(`truncated lz4 data in ${this.where}: it ends inside a frame after ${this.consumed + this.held} compressed bytes`);
    }
    if (this.frames === 0) throw new CompressionError(`truncated lz4 data in ${this.where}: no lz4 frame (empty input)`);
  }

  private corrupt(why: string, at = this.consumed): CompressionError {
    return new CompressionError(`corrupt lz4 data in ${this.where}: ${why} (at compressed byte ${at})`);
  }

  /** One unit of the frame, `bytes` being exactly what the state needed. */
  private step(bytes: Buffer): Buffer | null {
    const at = this.consumed - bytes.length;
    switch (this.state) {
      case 'magic': {
        const magic = bytes.readUInt32LE(0);
        if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
          this.state = 'skip-size';
          this.need = 4;
        } else if (magic === MAGIC) {
          this.state = 'descriptor';
          this.need = 2;
        } else throw this.corrupt(`not an lz4 frame (magic ${magic.toString(16).padStart(8, '0')})`, at);
        return null;
      }
      case 'skip-size':
        this.skipLeft = bytes.readUInt32LE(0);
        this.state = 'skip';
        return null;
      case 'descriptor':
        return this.descriptor(bytes, at);
      case 'block-size': {
        const word = bytes.readUInt32LE(0);
        const f = this.frame!;
        if (word === 0) {
          this.state = f.contentChecksum ? 'content-checksum' : 'magic';
          this.need = 4;
          if (!f.contentChecksum) this.endFrame(at);
          return null;
        }
        this.blockCompressed = (word & 0x80000000) === 0;
        this.blockStored = word & 0x7fffffff;
        if (this.blockStored > f.blockMax) throw this.corrupt(`block of ${this.blockStored} bytes, more than the frame's maximum of ${f.blockMax}`, at);
        this.state = 'block';
        this.need = this.blockStored + (f.blockChecksum ? 4 : 0);
        return null;
      }
      case 'block':
        return this.block(bytes, at);
      case 'content-checksum': {
        const f = this.frame!;
        const want = bytes.readUInt32LE(0);
        const got = f.hash!.digest() >>> 0;
        if (got !== want) throw this.corrupt(`content checksum mismatch (computed ${hex(got)}, frame says ${hex(want)})`, at);
        this.endFrame(at);
        this.state = 'magic';
        this.need = 4;
        return null;
      }
      default:
        throw new Error(`lz4 decoder in state ${this.state}`);
    }
  }

  /** FLG and BD first; then, knowing the optional fields, the whole descriptor with its checksum byte. */
  private descriptor(bytes: Buffer, at: number): null {
    const flg = bytes[0];
    if (bytes.length === 2) {
      if (flg >> 6 !== 1) throw this.corrupt(`unsupported lz4 frame version ${flg >> 6}`, at);
      // FLG, BD, [content size 8], [dictionary id 4], header checksum 1.
      this.need = 2 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1;
      this.unread(bytes);
      return null;
    }
    const bd = bytes[1];
    if (flg & 0x02 || bd & 0x80 || bd & 0x0f) throw this.corrupt('reserved bits set in the frame descriptor', at);
    const blockMax = BLOCK_MAX[(bd >> 4) & 0x07];
    if (!blockMax) throw this.corrupt(`invalid block maximum size code ${(bd >> 4) & 0x07}`, at);
    const check = (xxh32(bytes.subarray(0, bytes.length - 1), 0) >>> 8) & 0xff;
    if (check !== bytes[bytes.length - 1]) throw this.corrupt('frame header checksum mismatch', at);
    if (flg & 0x01) throw this.corrupt('the frame needs a dictionary, which pgbb does not have', at);
    const contentSize = flg & 0x08 ? bytes.readBigUInt64LE(2) : null;
    const contentChecksum = (flg & 0x04) !== 0;
    this.frame = {
      independent: (flg & 0x20) !== 0,
      blockChecksum: (flg & 0x10) !== 0,
      contentChecksum,
      contentSize,
      blockMax,
      produced: 0n,
      hash: contentChecksum ? new Xxh32(0) : null,
    };
    this.history = Buffer.alloc(0);
    this.state = 'block-size';
    this.need = 4;
    return null;
  }

  private block(bytes: Buffer, at: number): Buffer {
    const f = this.frame!;
    const data = bytes.subarray(0, this.blockStored);
    if (f.blockChecksum) {
      const want = bytes.readUInt32LE(this.blockStored);
      const got = xxh32(data, 0) >>> 0;
      if (got !== want) throw this.corrupt(`block checksum mismatch (computed ${hex(got)}, frame says ${hex(want)})`, at);
    }
    let out: Buffer;
    if (!this.blockCompressed) {
      // `bytes` may be a view of a pushed chunk: copied, so that what is handed on owns its memory.
      out = Buffer.from(data);
    } else {
      const hist = f.independent ? 0 : this.history.length;
      if (!this.scratch || this.scratch.length < WINDOW + f.blockMax) this.scratch = Buffer.allocUnsafe(WINDOW + f.blockMax);
      // Only hist + blockMax of it: a block may not write beyond the frame's maximum.
      const dst = this.scratch.subarray(0, hist + f.blockMax);
      if (hist) this.history.copy(dst, 0);
      let end: number;
      try {
        end = decodeBlock(data, dst, hist);
      } catch (err) {
        if (err instanceof BlockError) throw this.corrupt(err.message, at);
        throw err;
      }
      out = Buffer.from(dst.subarray(hist, end));
    }
    f.produced += BigInt(out.length);
    if (f.contentSize !== null && f.produced > f.contentSize) throw this.corrupt(`more data than the frame's declared content size of ${f.contentSize} bytes`, at);
    f.hash?.update(out);
    if (!f.independent) this.remember(out);
    this.state = 'block-size';
    this.need = 4;
    return out;
  }

  private endFrame(at: number): void {
    const f = this.frame!;
    if (f.contentSize !== null && f.produced !== f.contentSize) {
      throw this.corrupt(`frame holds ${f.produced} bytes, its header declares ${f.contentSize}`, at);
    }
    this.frame = null;
    this.history = Buffer.alloc(0);
    this.frames++;
  }

  /** Keeps the last WINDOW bytes of output for the next linked block. */
  private remember(out: Buffer): void {
    if (out.length >= WINDOW) this.history = out.subarray(out.length - WINDOW);
    else {
      const keep = Math.min(this.history.length, WINDOW - out.length);
      this.history = Buffer.concat([this.history.subarray(this.history.length - keep), out]);
    }
  }

  /** Drops skippable-frame bytes as they arrive; true once all are gone. */
  private discard(): boolean {
    while (this.skipLeft > 0 && this.held > 0) {
      const p = this.first;
      const n = Math.min(p.length, this.skipLeft);
      this.skipLeft -= n;
      this.held -= n;
      this.consumed += n;
      if (n === p.length) this.dropFirst();
      else this.pieces[this.head] = p.subarray(n);
    }
    return this.skipLeft === 0;
  }

  /** Exactly `n` held bytes (a view when one piece has them, else one copy). */
  private take(n: number): Buffer {
    // An empty stored block needs nothing, and nothing may be held.
    if (n === 0) return Buffer.alloc(0);
    this.held -= n;
    this.consumed += n;
    const first = this.first;
    if (first.length >= n) {
      if (first.length === n) this.dropFirst();
      else this.pieces[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.first;
      const k = Math.min(p.length, n - filled);
      p.copy(out, filled, 0, k);
      filled += k;
      if (k === p.length) this.dropFirst();
      else this.pieces[this.head] = p.subarray(k);
    }
    return out;
  }

  /** Puts bytes taken back at the front (the two descriptor bytes read ahead). */
  private unread(bytes: Buffer): void {
    if (this.head > 0) this.pieces[--this.head] = bytes;
    else this.pieces.unshift(bytes);
    this.held += bytes.length;
    this.consumed -= bytes.length;
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
