/**
 * Fuzzing the formats read from backups (targets: test/fuzz/targets/formats.ts):
 * pg_control, the backup descriptor, WAL segments — parsed or rejected with a
 * PgbbError, never a TypeError, a hang or a huge allocation.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: parseControlFile on mutated pg_control (CRC fixed half the time)', async (t) => {
  await fuzz(t, 'formats', 'controlFile', 10000);
});

test('fuzz: decodeDescriptor on mutated backup descriptors, and startFromDescriptor on what it accepts', async (t) => {
  await fuzz(t, 'formats', 'descriptor', 10000);
});

test('fuzz: checkWalRange on damaged WAL (headers, lengths, CRCs, missing and short segments)', async (t) => {
  await fuzz(t, 'formats', 'wal', 800);
});
