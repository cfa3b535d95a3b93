/**
 * The fixed parts of the age v1 format (https://age-encryption.org/v1) that
 * the encrypt and decrypt transforms share; pure, no streams.
 *
 *   header   "age-encryption.org/v1\n", stanzas, "--- <base64 HMAC>\n"
 *   nonce    16 random bytes; payload key = HKDF-SHA256(file key, salt nonce, "payload")
 *   payload  ChaCha20-Poly1305 over 64 KiB plaintext chunks (each + 16-byte
 *            tag), nonce = 11-byte big-endian chunk counter ‖ last-chunk flag;
 *            only the last chunk may be short, and it is empty only when the
 *            whole plaintext is (so a cut at a chunk boundary fails its tag).
 */
import { hkdfSync } from 'node:crypto';

/** What an encrypted file's name ends with (as `age -o` users name them). */
export const AGE_SUFFIX = '.age';
export const AGE_MAGIC = Buffer.from('age-encryption.org/v1\n', 'latin1');
export const CHUNK_BYTES = 64 * 1024;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 16;
/** Headers are a few hundred bytes; a megabyte allows thousands of recipients and bounds a hostile one. */
export const MAX_HEADER_BYTES = 1 << 20;

const MAC_LINE = Buffer.from('\n--- ', 'latin1');

/** True when `bytes` starts as an age file does (as much of the magic as it holds, at least 8 bytes). */
export function looksLikeAge(bytes: Buffer): boolean {
  const n = Math.min(bytes.length, AGE_MAGIC.length);
  return n >= 8 && bytes.subarray(0, n).equals(AGE_MAGIC.subarray(0, n));
}

/**
 * Length of the header at the start of `bytes` (through the MAC line's
 * newline), or -1 when `bytes` does not hold all of it yet.
 */
export function headerLength(bytes: Buffer): number {
  const mac = bytes.indexOf(MAC_LINE);
  if (mac < 0) return -1;
  const nl = bytes.indexOf(0x0a, mac + MAC_LINE.length);
  return nl < 0 ? -1 : nl + 1;
}

export function payloadKey(fileKey: Uint8Array, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

/** The 12-byte ChaCha20-Poly1305 nonce of chunk `counter` (< 2^53 here: 512 PiB at 64 KiB). */
export function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(Math.floor(counter / 2 ** 32), 3);
  n.writeUInt32BE(counter >>> 0, 7);
  n[11] = last ? 1 : 0;
  return n;
}

/** Ciphertext size of a plaintext of `size` bytes, without the header. */
export function encryptedPayloadSize(size: number): number {
  const chunks = size === 0 ? 1 : Math.ceil(size / CHUNK_BYTES);
  return NONCE_BYTES + size + chunks * TAG_BYTES;
}
