import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { gzipDecompress } from '../../transforms/gzip-decompress';
import { CompressionError } from '../../src/errors';

const drain = (into: Buffer[] = []) => new Writable({ write: (c, _e, cb) => (into.push(c), cb()) });

test('gzip-decompress: the original bytes back, concatenated members too', async () => {
  const out: Buffer[] = [];
  const data = Buffer.alloc(300_000, 'x');
  await pipeline(Readable.from([Buffer.concat([gzipSync(data), gzipSync(Buffer.from('tail'))])]), gzipDecompress({ name: 'base.tar.gz' }), drain(out));
  assert.deepEqual(Buffer.concat(out), Buffer.concat([data, Buffer.from('tail')]));
});

test('gzip-decompress: truncated or corrupt input is a CompressionError naming the archive', async () => {
  const whole = gzipSync(Buffer.alloc(100_000, 'y'));
  await assert.rejects(pipeline(Readable.from([whole.subarray(0, whole.length - 20)]), gzipDecompress({ name: 'base.tar.gz' }), drain()), (e: unknown) => e instanceof CompressionError && /^truncated gzip data in "base\.tar\.gz"$/.test(e.message));
  await assert.rejects(pipeline(Readable.from([Buffer.from('not gzip at all')]), gzipDecompress({ name: '16384.tar.gz' }), drain()), (e: unknown) => e instanceof CompressionError && /^corrupt gzip data \(.*\) in "16384\.tar\.gz"$/.test(e.message));
});
