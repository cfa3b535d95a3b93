/**
 * The library's defaults are the CLI's: `pgbb backup -D DIR` with no other
 * flag, read by the CLI's own option table and settings mapping
 * (src/cli/shared-options.ts), settles into the same plan as backup() given
 * only a connection and the target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram } from '../../../src/cli';
import { backupSettings } from '../../../src/cli/shared-options';
import { setActiveReporter } from '../../../src/cli/run-state';
import { settleBackup, type BackupOptions } from '../../../src/pipeline/backup-plan';

test('pgbb backup -D DIR (no other flag) and backup({ connection, target }) settle into the same plan', () => {
  const cmd = buildProgram().commands.find((c) => c.name() === 'backup')!;
  cmd.parseOptions(['-D', '/tmp/pgbb-defaults']);
  const settings = backupSettings(cmd.opts());
  setActiveReporter(null);
  const fromCli = settleBackup({ ...settings, target: '/tmp/pgbb-defaults' } as BackupOptions);
  const fromLibrary = settleBackup({ connection: settings.connection, target: '/tmp/pgbb-defaults' });
  const keys = ['format', 'sink', 'checkpoint', 'label', 'wal', 'slot', 'noSlot', 'maxRate', 'timeout', 'compress', 'walSpool', 'sync', 'manifest', 'manifestChecksums', 'verifyChecksums', 'jobs', 'chunkMap'] as const;
  for (const k of keys) assert.deepEqual(fromCli[k], fromLibrary[k], k);
  // And what they are, in the units README gives (timeout in ms; the CLI's --timeout is seconds).
  assert.equal(fromLibrary.wal, 'stream');
  assert.equal(fromLibrary.timeout, 60_000);
  assert.equal(cmd.opts().timeout, '60');
});
