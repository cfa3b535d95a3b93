/**
 * Fuzzing the refresh sink (target: test/fuzz/targets/refresh.ts): planted
 * backup directories and random member sequences in a sandbox; nothing
 * outside the backup and its recorded tablespace location may change.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: refresh sink on planted backup directories and random members writes nothing outside the backup and its tablespace', async (t) => {
  await fuzz(t, 'refresh', 'sink', 50, { timeoutMs: 20000 });
});
