/**
 * HeldManifest (transforms/held-manifest.ts): the manifest tarPack() holds
 * until its size is known, in memory then in an unlinked temporary file; a
 * manifest past its limit (a server that never ends one) is refused as it
 * grows (by default past LIMITS.manifest, the most pgbb reads back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldManifest, IN_MEMORY_BYTES } from '../../transforms/held-manifest';
import { IoError } from '../../src/errors';

const collect = async (it: AsyncIterable<Buffer>) => {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
};

test('past maxBytes: refused, in memory and once spilled to a file', async () => {
  const small = new HeldManifest(20);
  small.add(Buffer.alloc(20, 1));
  assert.throws(() => small.add(Buffer.alloc(1)), (err: Error) => err instanceof IoError && /grows past 20 bytes/.test(err.message));
  assert.deepEqual(await collect(small.read()), Buffer.alloc(20, 1));
  await small.release();

  const big = new HeldManifest(IN_MEMORY_BYTES + 10);
  await big.add(Buffer.alloc(IN_MEMORY_BYTES + 5, 2));
  assert.throws(() => big.add(Buffer.alloc(6)), IoError);
  assert.equal((await collect(big.read())).length, IN_MEMORY_BYTES + 5);
  await big.release();
});
