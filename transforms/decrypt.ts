/**
 * decrypt(): an age v1 file in (as encrypt() or `age -e` writes it),
 * plaintext out. The header is gathered (at most 1 MiB), opened with the
 * key (src/crypto/age-keys.ts: wrong key and a tampered header fail here),
 * then each 64 KiB chunk is authenticated before any of its bytes go on —
 * nothing unauthenticated is ever passed downstream.
 *
 * A chunk is opened as "not last" only once more input follows it; at the
 * end, what is held must open as the last chunk, so a file cut anywhere,
 * even at a chunk boundary, fails at its end, before the consumer sees the
 * end of the stream. Memory: one chunk plus one input chunk.
 * Errors: DecryptionError naming `name` — not age, wrong key, tampered
 * header, a chunk that fails authentication, truncated.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { guardBytes, type Stage } from './stream-kinds';
import { createDecipheriv } from 'node:crypto';
import { DecryptionError } from '../src/errors';
import { HeldChunks } from '../src/codec/held-chunks';
import { AGE_MAGIC, CHUNK_BYTES, MAX_HEADER_BYTES, NONCE_BYTES, TAG_BYTES, chunkNonce, headerLength, looksLikeAge, payloadKey } from '../src/codec/age-format';
import { openHeader, type DecryptKey } from '../src/crypto/age-keys';

export interface DecryptOptions {
  key: DecryptKey;
  /** The file or object, for messages. */
  name: string;
}

const SEALED = CHUNK_BYTES + TAG_BYTES;

export class Decrypt extends Transform implements Stage<'bytes', 'bytes'> {
  readonly takes = 'bytes' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'decrypt()';
  private readonly opts: DecryptOptions;
  private key: Buffer | null = null;
  /** Bytes before the payload key is known (header, nonce, perhaps payload). */
  private head: Buffer | null = Buffer.alloc(0);
  private readonly chunks = new HeldChunks(SEALED);
  private counter = 0;

  constructor(opts: DecryptOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.opts = opts;
    guardBytes(this, 'put tarPack() before it');
  }

  private fail(what: string): DecryptionError {
    return new DecryptionError(`${this.opts.name}: ${what}`);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.head === null) return this.payload(chunk, callback);
    const head = Buffer.concat([this.head, chunk]);
    if (!looksLikeAge(head) && head.length >= 8) return callback(this.fail('is not age-encrypted (wrong file, or written without encryption?)'));
    const n = headerLength(head);
    if (n < 0 || head.length < n + NONCE_BYTES) {
      if (head.length > MAX_HEADER_BYTES + NONCE_BYTES) return callback(this.fail(`encryption header is longer than ${MAX_HEADER_BYTES} bytes`));
      this.head = head;
      return callback();
    }
    this.head = null;
    openHeader(this.opts.key, head.subarray(0, n), this.opts.name).then((fileKey) => {
      this.key = payloadKey(fileKey, head.subarray(n, n + NONCE_BYTES));
      this.payload(head.subarray(n + NONCE_BYTES), callback);
    }, callback);
  }

  private open(sealed: Buffer, last: boolean, out: Buffer[]): boolean {
    const d = createDecipheriv('chacha20-poly1305', this.key!, chunkNonce(this.counter++, last), { authTagLength: TAG_BYTES });
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      d.final();
    } catch {
      return false;
    }
    out.push(plain);
    return true;
  }

  private payload(chunk: Buffer, callback: TransformCallback): void {
    const out: Buffer[] = [];
    if (!this.chunks.feed(chunk, (c) => this.open(c, false, out))) return callback(this.tampered());
    // Pushed as they are: a concat would copy every byte once more.
    for (const b of out) this.push(b);
    callback();
  }

  private tampered(): DecryptionError {
    return this.fail(`damaged or tampered with (chunk ${this.counter - 1} at ciphertext offset ${(this.counter - 1) * SEALED} fails authentication)`);
  }

  override _flush(callback: TransformCallback): void {
    if (this.head !== null) {
      const h = this.head;
      if (h.length === 0) return callback(this.fail('is empty (truncated?)'));
      if (!looksLikeAge(h) && !AGE_MAGIC.subarray(0, h.length).equals(h)) return callback(this.fail('is not age-encrypted'));
      return callback(this.fail('is truncated (it ends inside its encryption header)'));
    }
    const out: Buffer[] = [];
    // The last chunk is empty only in an empty file; a cut anywhere leaves a last chunk whose tag fails.
    const last = this.chunks.last();
    if (last.length < TAG_BYTES || (last.length === TAG_BYTES && this.counter > 0) || !this.open(last, true, out)) {
      return callback(this.fail('is truncated or tampered with (its last chunk does not authenticate)'));
    }
    callback(null, out[0]);
  }
}

export function decrypt(opts: DecryptOptions): Decrypt {
  return new Decrypt(opts);
}
