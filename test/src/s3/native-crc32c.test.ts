import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NativeCrc32c } from '../../../src/s3/client';

// The SDK's own CRC32C, which NativeCrc32c replaces in the client: the store checks the header it makes.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Crc32c } = require('@aws-sdk/checksums/crc');

test('NativeCrc32c gives the SDK Crc32c digest, across updates and after reset', async () => {
  const pieces = [randomBytes(1), randomBytes(70_000), new Uint8Array(randomBytes(13)), Buffer.alloc(0)];
  const mine = new NativeCrc32c();
  const sdk = new Crc32c();
  mine.update(Buffer.from('x'));
  mine.reset();
  for (const p of pieces) {
    mine.update(p);
    sdk.update(p);
  }
  assert.deepEqual(Buffer.from(await mine.digest()), Buffer.from(await sdk.digest()));
  assert.equal(Buffer.from(await mine.digest()).length, 4);
});
