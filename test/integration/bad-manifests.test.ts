/**
 * The malformed manifests of PostgreSQL's own pg_verifybackup suite
 * (src/bin/pg_verifybackup/t/005_bad_manifest.pl: 30 cases), each put in
 * place of the backup_manifest of a real plain backup (PostgreSQL 15) and
 * run through `pgbb verify` as a DBA would: every one fails, exit 1, with
 * one problem line that names the manifest and the actual problem (in
 * pg_verifybackup's words where pgbb has them; never one generic line for
 * all) and the closing error line.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';

const pg = useSampleServer({ sampleData: false, conf: { autovacuum: 'off' } });

const V = '"PostgreSQL-Backup-Manifest-Version": 1';
/** [the problem in pg_verifybackup's words (its test's name), the manifest's text, what pgbb's line must say]. */
const CASES: [string, string, RegExp][] = [
  ['input string ended unexpectedly', '{\n', /ended unexpectedly|unexpected end/i],
  ['unexpected object end', '{}\n', /unexpected object end|expected version indicator/],
  ['unexpected array start', '[]\n', /unexpected array start|not a JSON object/],
  ['expected version indicator', '{"not-expected": 1}\n', /expected version indicator/],
  ['manifest version not an integer', '{"PostgreSQL-Backup-Manifest-Version": "phooey"}\n', /manifest version (is )?not an integer/],
  ['unexpected manifest version', '{"PostgreSQL-Backup-Manifest-Version": 9876599}\n', /unexpected manifest version/],
  ['unexpected scalar', `{${V}, "Files": true}\n`, /unexpected scalar|"Files" is not an array/],
  ['unrecognized top-level field', `{${V}, "Oops": 1}\n`, /unrecognized top-level field/],
  ['unexpected object start', `{${V}, "Files": {}}\n`, /unexpected object start|"Files" is not an array/],
  ['missing path name', `{${V}, "Files": [{}]}\n`, /missing path name/],
  ['both path name and encoded path name', `{${V}, "Files": [\n    {"Path": "x", "Encoded-Path": "1234"}\n]}\n`, /both path name and encoded path name/],
  ['unexpected file field', `{${V}, "Files": [\n    {"Oops": 1}\n]}\n`, /unexpected file field/],
  ['missing size', `{${V}, "Files": [\n    {"Path": "x"}\n]}\n`, /missing size/],
  ['file size is not an integer', `{${V}, "Files": [\n    {"Path": "x", "Size": "Oops"}\n]}\n`, /file size is not an integer|size of "x" is not an integer/],
  ['could not decode file name', `{${V}, "Files": [\n    {"Encoded-Path": "123", "Size": 0}\n]}\n`, /could not decode file name/],
  ['duplicate path name in backup manifest', `{${V}, "Files": [\n    {"Path": "x", "Size": 0},\n    {"Path": "x", "Size": 0}\n]}\n`, /duplicate path name/],
  ['checksum without algorithm', `{${V}, "Files": [\n    {"Path": "x", "Size": 100, "Checksum": "Oops"}\n]}\n`, /checksum without algorithm/],
  ['unrecognized checksum algorithm', `{${V}, "Files": [\n    {"Path": "x", "Size": 100, "Checksum-Algorithm": "Oops", "Checksum": "00"}\n]}\n`, /unrecognized checksum algorithm/],
  ['invalid checksum for file', `{${V}, "Files": [\n    {"Path": "x", "Size": 100, "Checksum-Algorithm": "CRC32C", "Checksum": "0"}\n]}\n`, /invalid checksum for file/],
  ['missing start LSN', `{${V}, "WAL-Ranges": [\n    {"Timeline": 1}\n]}\n`, /missing start LSN/],
  ['missing end LSN', `{${V}, "WAL-Ranges": [\n    {"Timeline": 1, "Start-LSN": "0/0"}\n]}\n`, /missing end LSN/],
  ['unexpected WAL range field', `{${V}, "WAL-Ranges": [\n    {"Oops": 1}\n]}\n`, /unexpected WAL range field/],
  ['missing timeline', `{${V}, "WAL-Ranges": [\n    {}\n]}\n`, /missing timeline/],
  ['unexpected object end (no Manifest-Checksum)', `{${V}, "WAL-Ranges": [\n    {"Timeline": 1, "Start-LSN": "0/0", "End-LSN": "0/0"}\n]}\n`, /unexpected object end|no checksum as its last field/],
  ['timeline is not an integer', `{${V}, "WAL-Ranges": [\n    {"Timeline": true, "Start-LSN": "0/0", "End-LSN": "0/0"}\n]}\n`, /timeline is not an integer/],
  ['could not parse start LSN', `{${V}, "WAL-Ranges": [\n    {"Timeline": 1, "Start-LSN": "oops", "End-LSN": "0/0"}\n]}\n`, /could not parse start LSN/],
  ['could not parse end LSN', `{${V}, "WAL-Ranges": [\n    {"Timeline": 1, "Start-LSN": "0/0", "End-LSN": "oops"}\n]}\n`, /could not parse end LSN/],
  ['expected at least 2 lines', `{${V}, "Files": [], "Manifest-Checksum": null}\n`, /expected at least 2 lines/],
  ['last line not newline-terminated', `{${V},\n "Files": [],\n "Manifest-Checksum": null}`, /last line not newline-terminated/],
  ['invalid manifest checksum', `{${V}, "Files": [],\n "Manifest-Checksum": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01234567890-"}\n`, /invalid manifest checksum/],
];

test(`pg_verifybackup's ${CASES.length} malformed manifests: pgbb verify fails on each with one problem line naming the manifest and the problem`, async () => {
  const root = await pg.scratch('pgbb-badmanifest-');
  const dir = join(root, 'b');
  const b = await runPgbb(['backup', ...pg.conn(), '-D', dir, '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  const lines = new Set<string>();
  // Every case is run and every miss reported together.
  const misses: string[] = [];
  for (const [name, text, expected] of CASES) {
    await fs.writeFile(join(dir, 'backup_manifest'), text);
    const r = await runPgbb(['verify', dir]);
    const errors = r.stderr.split('\n').filter(Boolean);
    const line = errors[0] ?? '';
    if (r.code !== 1) misses.push(`${name}: exit ${r.code}`);
    else if (errors.length !== 2 || !/^pgbb: error: backup "\S+" failed verification \(1 problem\)$/.test(errors[1])) misses.push(`${name}: not one problem and the error: ${r.stderr}`);
    else if (!/^pgbb: manifest: backup_manifest: /.test(line)) misses.push(`${name}: the manifest is not named: ${line}`);
    else if (!expected.test(line)) misses.push(`${name}: ${line}`);
    lines.add(line);
  }
  assert.deepEqual(misses, []);
  // No catch-all: the problems are told apart. Two pairs are one problem each to pgbb: `{}` and a first field
  // that is not the version ("expected version indicator"), and Files as a scalar or an object ("not an array").
  assert.ok(lines.size >= CASES.length - 2, `${lines.size} distinct messages for ${CASES.length} manifests`);
});
