/**
 * Fuzzing the backup-reading sources end to end (targets:
 * test/fuzz/targets/sources.ts): pgbb's own tar stream and tar directory,
 * plain and zstd, mutated, read through manifest-verify with the manifest
 * required — either a well-ordered member stream holding exactly the files
 * backed up or a PgbbError, never a TypeError or a hang; a file's bytes
 * changed is a ManifestError naming it.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: tarStreamSource + manifest-verify over mutated `-D -` streams (plain and zstd)', async (t) => {
  await fuzz(t, 'sources', 'stream', 1500);
});

test('fuzz: tarDirectorySource + manifest-verify over mutated `-F tar` directories', async (t) => {
  await fuzz(t, 'sources', 'directory', 300);
});
