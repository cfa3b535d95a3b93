/**
 * gzip-decompress: gzip bytes in (`pg_basebackup -Ft -z`, `--compress
 * gzip`, `server-gzip`), the original bytes out (a byte stream).
 *
 *   gzipDecompress({ name?: 'base.tar.gz' })
 *
 * node's zlib Gunzip, which holds backpressure (it inflates only as its
 * reader pulls) and reads concatenated members as gzip(1) does.
 * Errors: CompressionError naming `name`: corrupt input, or input that ends
 * inside a member (a truncated file says so instead of passing as shorter).
 */
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CompressionError } from '../src/errors';

export interface GzipDecompressOptions {
  /** What the bytes are (a file or object name), for error messages. */
  name?: string;
}

export function gzipDecompress(o: GzipDecompressOptions = {}): Transform {
  const z = createGunzip({ chunkSize: 128 * 1024 });
  const where = o.name ? ` in "${o.name}"` : '';
  // Errors from zlib carry its own words ("unexpected end of file"); name the archive with them.
  const destroy = z.destroy.bind(z);
  z.destroy = (err?: Error | null) => {
    if (err && !(err instanceof CompressionError)) {
      const why = (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' ? 'truncated gzip data' : `corrupt gzip data (${err.message})`;
      err = new CompressionError(`${why}${where}`, { cause: err });
    }
    return destroy(err ?? undefined);
  };
  return z;
}
