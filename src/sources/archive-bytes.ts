/**
 * An archive's bytes as a restore or verify reads them (pgbb's tar files,
 * pg_basebackup's, an S3 backup's objects, a `-D -` stream): opened without
 * following a link or blocking, decrypted (`.age`), decompressed by name
 * (`.zst`, `.gz`, `.lz4`) or, for a stream, by its magic; an encrypted
 * manifest decrypted and capped. tar-backup-source.ts turns them into members.
 */
import { Readable, type Duplex } from 'node:stream';
import { ioError, PgbbError, UsageError } from '../errors';
import { LIMITS, openRegular } from '../io/read-limited';
import { zstdDecompress } from '../../transforms/zstd-decompress';
import { decrypt } from '../../transforms/decrypt';
import { AGE_SUFFIX, looksLikeAge } from '../codec/age-format';
import type { DecryptKey } from '../crypto/age-keys';
import { MANIFEST_PIECE_BYTES } from '../../transforms/tar-unpack';
import { gzipDecompress } from '../../transforms/gzip-decompress';
import { lz4Decompress } from '../../transforms/lz4-decompress';
import { showPath } from '../codec/path-bytes';
import { destroyAndWait } from '../io/stream-end';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const LZ4_MAGIC = Buffer.from([0x04, 0x22, 0x4d, 0x18]);

/**
 * Opens one archive file, decrypting `.age` and decompressing `.zst`. Opened
 * without following a link or blocking (a FIFO named base.tar would hang the
 * open), and only a regular file is read.
 */
export async function* openArchive(file: string, key: DecryptKey | undefined): AsyncGenerator<Buffer> {
  if (file.endsWith(AGE_SUFFIX) && !key) throw keyNeeded(showPath(file));
  const fh = await openRegular(file, 'archive');
  const raw = fh.createReadStream({ highWaterMark: 256 * 1024 });
  const readError = (err: unknown) => (err instanceof PgbbError ? err : ioError('could not read file', file, err));
  const plain = file.endsWith(AGE_SUFFIX) ? decrypting(raw, showPath(file), key, readError) : raw;
  try {
    yield* decompressed(plain, file.endsWith(AGE_SUFFIX) ? file.slice(0, -AGE_SUFFIX.length) : file, showPath(file), readError);
  } finally {
    // Closes the handle, also when the consumer stops early; waited for, so
    // that no descriptor outlives a failed restore or verify.
    if (plain !== raw) plain.destroy();
    await destroyAndWait(raw);
  }
}

function keyNeeded(name: string): UsageError {
  return new UsageError(`${name} is encrypted: give its key (--encrypt-passphrase-file, PGBB_ENCRYPT_PASSPHRASE or --encrypt-identity-file)`);
}

/** `raw` through decrypt(); refused without a key (checked before anything is opened, where there is a file). */
function decrypting(raw: Readable, name: string, key: DecryptKey | undefined, readError: (err: unknown) => Error): Readable {
  if (!key) throw keyNeeded(name);
  const d = decrypt({ key, name });
  raw.on('error', (err) => d.destroy(readError(err)));
  return raw.pipe(d);
}

/** At most LIMITS.manifest.maxBytes of `chunks` (a decrypted or downloaded manifest), in pieces of MANIFEST_PIECE_BYTES. */
export async function* cappedPieces(chunks: AsyncIterable<Buffer>, where: string): AsyncGenerator<Buffer> {
  let total = 0;
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const chunk of chunks) {
    total += chunk.length;
    if (total > LIMITS.manifest.maxBytes) throw new PgbbError('manifest', `${where} is larger than ${LIMITS.manifest.maxBytes} bytes`);
    held.push(chunk);
    heldBytes += chunk.length;
    while (heldBytes >= MANIFEST_PIECE_BYTES) {
      const all = Buffer.concat(held);
      yield all.subarray(0, MANIFEST_PIECE_BYTES);
      held = [all.subarray(MANIFEST_PIECE_BYTES)];
      heldBytes = held[0].length;
    }
  }
  if (heldBytes > 0) yield Buffer.concat(held);
}

/** backup_manifest.age: decrypted, capped. */
export async function* encryptedManifest(file: string, key: DecryptKey | undefined): AsyncGenerator<Buffer> {
  if (!key) throw keyNeeded(showPath(file));
  const fh = await openRegular(file, LIMITS.manifest.what);
  const raw = fh.createReadStream({ highWaterMark: 256 * 1024 });
  const d = decrypting(raw, showPath(file), key, (err) => ioError('could not read file', file, err));
  try {
    yield* cappedPieces(d, showPath(file));
  } finally {
    d.destroy();
    raw.destroy();
  }
}

/** An archive's bytes, decompressed by its name's suffix (`.zst`, `.gz`, `.lz4`); `name` says where in errors. */
export async function* decompressed(raw: Readable, file: string, name: string, readError: (err: unknown) => Error): AsyncGenerator<Buffer> {
  if (!file.endsWith('.zst') && !file.endsWith('.gz') && !file.endsWith('.lz4')) {
    yield* raw;
    return;
  }
  // Named, so that a truncated or corrupt frame says which archive it is in.
  const z: Duplex = file.endsWith('.gz') ? gzipDecompress({ name }) : file.endsWith('.lz4') ? lz4Decompress({ name }) : zstdDecompress({ name });
  raw.on('error', (err) => z.destroy(readError(err)));
  try {
    yield* raw.pipe(z) as AsyncIterable<Buffer>;
  } finally {
    z.destroy();
  }
}

/** Peeks at the first bytes to choose between plain tar, zstd, gzip and lz4 (pg_basebackup -D - -Ft -z or --compress), decrypting an age stream first. */
export async function* maybeDecompress(input: Readable, name: string, key?: DecryptKey): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    while (true) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  })();
  const starts = (magic: Buffer) => first.value.length >= magic.length && first.value.subarray(0, magic.length).equals(magic);
  if (looksLikeAge(first.value)) {
    yield* maybeDecompress(decrypting(Readable.from(rest, { objectMode: false }), name, key, (e) => e as Error), name);
  } else if (starts(ZSTD_MAGIC) || starts(GZIP_MAGIC) || starts(LZ4_MAGIC)) {
    // pipe() does not pass errors on: a failing input (a decrypt error, say) must fail the decompressor.
    const src = Readable.from(rest, { objectMode: false });
    const z: Duplex = starts(ZSTD_MAGIC) ? zstdDecompress({ name }) : starts(GZIP_MAGIC) ? gzipDecompress({ name }) : lz4Decompress({ name });
    src.on('error', (err) => z.destroy(err));
    yield* src.pipe(z) as AsyncIterable<Buffer>;
  } else {
    yield* rest;
  }
}

/** The first `bytes` of a byte stream, and the whole stream again (nothing lost). */
export async function peek(chunks: AsyncGenerator<Buffer>, bytes: number): Promise<{ head: Buffer; all: AsyncGenerator<Buffer> }> {
  const held: Buffer[] = [];
  let n = 0;
  while (n < bytes) {
    const r = await chunks.next();
    if (r.done) break;
    held.push(r.value);
    n += r.value.length;
  }
  const all = (async function* () {
    yield* held;
    yield* chunks;
  })();
  return { head: Buffer.concat(held), all };
}
