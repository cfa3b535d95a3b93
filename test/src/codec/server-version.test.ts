/**
 * The version facts pgbb branches on, per major, as PostgreSQL's sources
 * state them (repl_gram.y, basebackup.c, backup_manifest.c, basebackup_incremental.c),
 * and which servers are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hasIncrementalBackup,
  hasOptionListGrammar,
  hasReadReplicationSlot,
  hasRenamedBackupFunctions,
  hasWalSummaries,
  majorOf,
  manifestVersionFor,
  skipsDsStore,
  strictRelationFileNames,
  unsupportedServer,
  versionOfMajor,
} from '../../../src/codec/server-version';

test('per major: option-list grammar, READ_REPLICATION_SLOT, pg_backup_start and .DS_Store left out from 15; INCREMENTAL, manifest 2, strict relation names and pg_wal/summaries from 17', () => {
  const facts = [14, 15, 16, 17, 18].map((major) => {
    const v = versionOfMajor(major) + 7; // a minor release
    return [majorOf(v), hasOptionListGrammar(v), hasReadReplicationSlot(v), hasIncrementalBackup(v), manifestVersionFor(v), strictRelationFileNames(v), hasRenamedBackupFunctions(v), skipsDsStore(v), hasWalSummaries(v)];
  });
  assert.deepEqual(facts, [
    [14, false, false, false, 1, false, false, false, false],
    [15, true, true, false, 1, false, true, true, false],
    [16, true, true, false, 1, false, true, true, false],
    [17, true, true, true, 2, true, true, true, true],
    [18, true, true, true, 2, true, true, true, true],
  ]);
});

test('14 to 18 are supported; older and newer servers are refused with one clear line, as pg_basebackup refuses newer ones', () => {
  for (const v of [140000, 140023, 150018, 160014, 170010, 180004, 189999]) assert.equal(unsupportedServer(v), null, String(v));
  assert.equal(unsupportedServer(130022), 'server version 130022 is not supported (PostgreSQL 14 or later is required)');
  assert.equal(unsupportedServer(90624), 'server version 90624 is not supported (PostgreSQL 14 or later is required)');
  assert.equal(unsupportedServer(190000), 'incompatible server version 190000: pgbb supports PostgreSQL 14 to 18');
  assert.equal(unsupportedServer(Number('')), 'server version "0" is not a version number');
  assert.equal(unsupportedServer(Number('x')), 'server version "NaN" is not a version number');
});
