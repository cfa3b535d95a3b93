/**
 * Fuzzing the tar codecs (targets: test/fuzz/targets/tar.ts): header blocks,
 * pax payloads and whole archives (from pgbb's TarWriter, tar-stream and GNU
 * tar forms), mutated and cut anywhere — decoded, or rejected with a
 * TarFormatError; the parser's handler contract holds for whatever it accepts.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: decodeHeader on mutated and random header blocks', async (t) => {
  await fuzz(t, 'tar', 'header', 20000);
});

test('fuzz: decodePax / decodePaxOverrides on mutated pax payloads', async (t) => {
  await fuzz(t, 'tar', 'pax', 20000);
});

test('fuzz: TarParser over mutated archives, cut at random points', async (t) => {
  await fuzz(t, 'tar', 'parser', 6000);
});
