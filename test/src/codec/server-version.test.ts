/**
 * The version facts pgbb branches on, per major, as PostgreSQL's sources
 * state them (repl_gram.y, basebackup.c, backup_manifest.c, basebackup_incremental.c),
 * and which servers are refused.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  hasIncrementalBackup,
  hasOptionListGrammar,
  hasReadReplicationSlot,
  hasRenamedBackupFunctions,
  hasWalSummaries,
  majorOf,
  manifestVersionFor,
  namesAbsoluteBlocks,
  skipsDsStore,
  strictRelationFileNames,
  unsupportedServer,
  versionOfMajor,
} from '../../../src/codec/server-version';

test('per major: option-list grammar, READ_REPLICATION_SLOT, pg_backup_start and .DS_Store left out from 15; INCREMENTAL, manifest 2, strict relation names, pg_wal/summaries and absolute block numbers from 17', () => {
  const facts = [14, 15, 16, 17, 18].map((major) => {
    const v = versionOfMajor(major) + 7; // a minor release
    return [majorOf(v), hasOptionListGrammar(v), hasReadReplicationSlot(v), hasIncrementalBackup(v), manifestVersionFor(v), strictRelationFileNames(v), hasRenamedBackupFunctions(v), skipsDsStore(v), hasWalSummaries(v), namesAbsoluteBlocks(v)];
  });
  assert.deepEqual(facts, [
    [14, false, false, false, 1, false, false, false, false, false],
    [15, true, true, false, 1, false, true, true, false, false],
    [16, true, true, false, 1, false, true, true, false, false],
    [17, true, true, true, 2, true, true, true, true, true],
    [18, true, true, true, 2, true, true, true, true, true],
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

/** The .ts sources of src/, transforms/ and sinks/ (the build runs from dist/test/src/codec). */
function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test('version differences live in src/codec/server-version.ts: no other module compares a server version or major with a release number', () => {
  const repo = path.resolve(__dirname, '../../../..');
  const own = path.join(repo, 'src', 'codec', 'server-version.ts');
  // `v >= 170000`, `170000 > v`, `major < 15`: a branch on a release, wherever it is spelled.
  const versionLiteral = /(>=|<=|<|>|===|!==)\s*1[0-9]0[0-9]{3}\b|\b1[0-9]0[0-9]{3}\s*(>=|<=|<|>|===|!==)/;
  const majorLiteral = /\b\w*[mM]ajor\w*\s*(>=|<=|<|>|===|!==)\s*1[0-9]\b|\b1[0-9]\s*(>=|<=|<|>|===|!==)\s*\w*[mM]ajor/;
  const found: string[] = [];
  for (const file of ['src', 'transforms', 'sinks'].flatMap((d) => sources(path.join(repo, d)))) {
    if (file === own) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      if (/^\s*\*/.test(code)) return; // a comment's line
      if (versionLiteral.test(code) || majorLiteral.test(code)) found.push(`${path.relative(repo, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});
