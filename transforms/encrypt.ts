/**
 * encrypt(): plaintext bytes in, an age v1 file out (decryptable with
 * `age -d`): the header (src/crypto/age-keys.ts) and payload nonce first,
 * then each 64 KiB of input sealed with node:crypto's ChaCha20-Poly1305
 * (src/codec/age-format.ts has the layout).
 *
 * A full chunk is held until more input shows it is not the last one (the
 * last carries a flag in its nonce), so memory is one chunk plus what one
 * input chunk yields. An empty input still gives a valid file (one empty
 * final chunk). Errors: only a bad key (at construction, through the
 * pipeline) — the header is made in _construct, so scrypt's half second
 * happens before the first byte.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { guardBytes, type Stage } from './stream-kinds';
import { createCipheriv, randomBytes } from 'node:crypto';
import { HeldChunks } from '../src/codec/held-chunks';
import { CHUNK_BYTES, TAG_BYTES, chunkNonce, payloadKey } from '../src/codec/age-format';
import { newHeader, type EncryptKey } from '../src/crypto/age-keys';

export interface EncryptOptions {
  key: EncryptKey;
  /** scrypt work factor for a passphrase (default age's 18). */
  scryptLogN?: number;
}

export class Encrypt extends Transform implements Stage<'bytes', 'bytes'> {
  readonly takes = 'bytes' as const;
  readonly gives = 'bytes' as const;
  readonly stageName = 'encrypt()';
  private readonly opts: EncryptOptions;
  private key: Buffer | null = null;
  /** Header and nonce, pushed with the first output. */
  private prefix: Buffer | null = null;
  private readonly chunks = new HeldChunks(CHUNK_BYTES);
  private counter = 0;

  constructor(opts: EncryptOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.opts = opts;
    guardBytes(this, 'put tarPack() before it');
  }

  override _construct(callback: (err?: Error | null) => void): void {
    newHeader(this.opts.key, this.opts.scryptLogN).then(({ header, fileKey }) => {
      const nonce = randomBytes(16);
      this.key = payloadKey(fileKey, nonce);
      this.prefix = Buffer.concat([header, nonce]);
      callback();
    }, callback);
  }

  private seal(plain: Buffer, last: boolean, out: Buffer[]): void {
    const c = createCipheriv('chacha20-poly1305', this.key!, chunkNonce(this.counter++, last), { authTagLength: TAG_BYTES });
    out.push(c.update(plain));
    c.final();
    out.push(c.getAuthTag());
  }

  private takePrefix(out: Buffer[]): void {
    if (this.prefix) out.push(this.prefix);
    this.prefix = null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const out: Buffer[] = [];
    this.takePrefix(out);
    this.chunks.feed(chunk, (c) => (this.seal(c, false, out), true));
    // Pushed as they are: a concat would copy every byte once more.
    for (const b of out) this.push(b);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const out: Buffer[] = [];
    this.takePrefix(out);
    this.seal(this.chunks.last(), true, out);
    callback(null, Buffer.concat(out));
  }
}

export function encrypt(opts: EncryptOptions): Encrypt {
  return new Encrypt(opts);
}
