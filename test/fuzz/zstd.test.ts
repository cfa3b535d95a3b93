/**
 * Fuzzing zstd-decompress (target: test/fuzz/targets/zstd.ts): mutated
 * frames end the stream or fail it with a CompressionError; none hangs.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: zstdDecompress over mutated frames in random pieces', async (t) => {
  await fuzz(t, 'zstd', 'decompress', 1500);
});
