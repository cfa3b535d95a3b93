import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { lz4Decompress } from '../../transforms/lz4-decompress';
import { CompressionError } from '../../src/errors';

const lz4 = (input: Buffer, args: string[] = []) => execFileSync('lz4', [...args, '-c'], { input, maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'ignore'] });

test('lz4-decompress: the original bytes back through a pipeline, in input pieces of any size', async () => {
  const data = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => Buffer.from(`row ${i} ${'x'.repeat(i % 40)}\n`)));
  const framed = lz4(data, ['-BD']);
  const pieces = Array.from({ length: Math.ceil(framed.length / 777) }, (_, i) => framed.subarray(i * 777, (i + 1) * 777));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), lz4Decompress({ name: 'base.tar.lz4' }), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
  assert.ok(Buffer.concat(out).equals(data));
});

test('lz4-decompress: a slow reader holds the decoder back (memory stays near one block)', async () => {
  // 256 MiB of zeros from about 1 MiB of frame: pulled slowly, never decoded far ahead.
  const framed = lz4(Buffer.alloc(256 << 20), ['-B7']);
  const z = lz4Decompress({ name: 'zeros.lz4' });
  let got = 0;
  let maxAhead = 0;
  const sink = new Writable({
    highWaterMark: 1,
    write(c: Buffer, _e, cb) {
      got += c.length;
      maxAhead = Math.max(maxAhead, z.readableLength);
      setImmediate(cb);
    },
  });
  await pipeline(Readable.from([framed]), z, sink);
  assert.equal(got, 256 << 20);
  assert.ok(maxAhead <= 8 << 20, `buffered ahead of the reader: ${maxAhead}`);
});

test('lz4-decompress: truncated or not lz4 is a CompressionError naming the archive', async () => {
  const framed = lz4(Buffer.alloc(100_000, 'y'));
  const drain = () => new Writable({ write: (_c, _e, cb) => cb() });
  await assert.rejects(pipeline(Readable.from([framed.subarray(0, framed.length - 3)]), lz4Decompress({ name: 'base.tar.lz4' }), drain()), (e: unknown) => e instanceof CompressionError && /^truncated lz4 data in "base\.tar\.lz4"/.test(e.message));
  await assert.rejects(pipeline(Readable.from([Buffer.from('not lz4 at all')]), lz4Decompress({ name: '16384.tar.lz4' }), drain()), (e: unknown) => e instanceof CompressionError && /^corrupt lz4 data in "16384\.tar\.lz4": not an lz4 frame/.test(e.message));
});
