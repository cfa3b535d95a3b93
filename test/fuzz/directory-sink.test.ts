/**
 * Fuzzing the directory sink (target: test/fuzz/targets/directory-sink.ts):
 * random member sequences with hostile links, paths, modes and tablespace
 * locations, written into a sandbox — accepted or refused with a PgbbError,
 * never a write outside the target and the tablespace locations, never a
 * setuid bit or a group/world-writable file.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: DirectorySink over random member sequences in a sandbox', async (t) => {
  await fuzz(t, 'directory-sink', 'directory', 400);
});
