/**
 * Fuzzing parseManifest (target: test/fuzz/targets/manifest.ts): mutated
 * bytes, mutated bytes with the checksum fixed, and mutated JSON trees —
 * parsed into a well-typed manifest or rejected with a ManifestError.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: parseManifest on mutated manifests (bytes, checksum-fixed bytes, JSON trees)', async (t) => {
  await fuzz(t, 'manifest', 'parse', 6000);
});
