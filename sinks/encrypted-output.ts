/**
 * Where a sink's bytes are encrypted (transforms/encrypt.ts) on their way
 * out: a Writable that encrypts into `output` and finishes only once
 * `output` has everything; S3's per-object transform hook.
 * Encrypted files are named with age's `.age` suffix; S3 objects keep
 * their names and the backup record says "age".
 */
import * as stream from 'node:stream';
import type { Writable } from 'node:stream';
import type { EncryptKey } from '../src/crypto/age-keys';
import type { ObjectTransform } from '../src/s3/object-writer';
import { encrypt } from '../transforms/encrypt';

export { AGE_SUFFIX } from '../src/codec/age-format';

// stream.compose() (Node 16.9+) is missing from @types/node 20: one stream of the two, ending when the last has.
const compose = (stream as unknown as { compose: (...s: stream.Stream[]) => stream.Duplex }).compose;

export function encryptedTo(output: Writable, key: EncryptKey | null): Writable {
  return key ? compose(encrypt({ key }), output) : output;
}

export function encryptedObjects(key: EncryptKey | null): { transform?: ObjectTransform; transformName?: string } {
  return key ? { transform: () => encrypt({ key }), transformName: 'age' } : {};
}
