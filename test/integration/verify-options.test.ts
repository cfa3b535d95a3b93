/**
 * `pgbb verify` with pg_verifybackup's options, and the pg_control identity
 * check pg_verifybackup lacks, against a real PostgreSQL 15 (version 1
 * manifests): -i, -m, -s, -w, -e, -P each change the verdict the way
 * pg_verifybackup's do; another cluster's pg_control passes pg_verifybackup
 * but not pgbb verify, in a plain backup (the chunk map's system identifier)
 * and a tar one (the descriptor's).
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Cluster } from '../support/cluster';
import { connArgs, testScratch, verifybackup } from '../support/scratch';
import { runPgbb } from '../support/pgbb';
import { patchMember } from '../support/tar-offset';

const scratch = testScratch();
let cluster: Cluster;
let other: Cluster;
let root: string;
let plain: string;

before(async () => {
  [cluster, other] = await Promise.all([scratch.cluster(), scratch.cluster()]);
  await cluster.query('CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g');
  root = await scratch.dir('pgbb-verify-opts-');
  plain = join(root, 'plain');
  const r = await runPgbb(['backup', ...connArgs(cluster), '-D', plain, '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
});

/** A copy of the plain backup to damage. */
async function copyOf(name: string): Promise<string> {
  const dir = join(root, name);
  await fs.cp(plain, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

const verify = (...args: string[]) => runPgbb(['verify', ...args]);
/** Only the manifest check (-n: no WAL, -k: no page checksums), where the others say nothing new. */
const verifyManifest = (...args: string[]) => verify('-n', '-k', ...args);

test('-i leaves a path (and what is below it) out of the manifest check', async () => {
  const dir = await copyOf('ignore');
  await fs.writeFile(join(dir, 'extra.conf'), 'x\n');
  await fs.rm(join(dir, 'pg_logical', 'replorigin_checkpoint'));
  const bad = await verifyManifest(dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /"extra\.conf" is in the backup but not in the manifest/);
  assert.match(bad.stderr, /"pg_logical\/replorigin_checkpoint" is in the manifest but not in the backup/);
  const r = await verifyManifest('-i', 'extra.conf', '--ignore', 'pg_logical/', dir);
  assert.equal(r.code, 0, r.stderr);
  // Under -i the summary says how many listed files went unchecked (postgresql.auto.conf always is, as in pg_verifybackup).
  assert.match(r.stdout, /; [1-9]\d* of the files left unchecked \(-i, postgresql\.auto\.conf/);
});

test('-s compares sizes only: a same-size change passes, a size change does not', async () => {
  const dir = await copyOf('skip');
  const conf = join(dir, 'postgresql.conf');
  const text = await fs.readFile(conf, 'latin1');
  await fs.writeFile(conf, text.replace('#', '!'), 'latin1');
  assert.match((await verifyManifest(dir)).stderr, /"postgresql\.conf" has CRC32C \w+ in the backup but \w+ in the manifest/);
  assert.equal((await verifyManifest('-s', dir)).code, 0);
  await fs.appendFile(conf, '#\n');
  assert.match((await verifyManifest('--skip-checksums', dir)).stderr, /"postgresql\.conf" has size/);
});

test('-m checks against a manifest kept elsewhere', async () => {
  const dir = await copyOf('manifest-path');
  const kept = join(root, 'kept_manifest');
  await fs.rename(join(dir, 'backup_manifest'), kept);
  assert.match((await verifyManifest(dir)).stderr, /no backup_manifest/);
  const r = await verifyManifest('-m', kept, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match((await verifyManifest('--manifest-path', join(root, 'nothing'), dir)).stderr, /^pgbb: error: could not open manifest ".*nothing": no such file\n$/);
});

test('-w reads the WAL from a directory: a backup whose pg_wal was moved away verifies against it', async () => {
  const dir = await copyOf('wal-dir');
  const wal = join(root, 'wal-archive');
  await fs.mkdir(wal);
  for (const n of await fs.readdir(join(dir, 'pg_wal'))) {
    if (/^[0-9A-F]{24}$/.test(n)) await fs.rename(join(dir, 'pg_wal', n), join(wal, n));
  }
  assert.match((await verify(dir)).stderr, /holds no WAL/);
  const r = await verify('-w', wal, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\(1 segments, \d+ records\)/);
  const empty = join(root, 'no-wal');
  await fs.mkdir(empty);
  const e = await verify('--wal-directory', empty, dir);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /WAL: .*[0-9A-F]{24}/);
});

test('-e stops at the first problem: the manifest\'s, the WAL check never runs', async () => {
  const dir = await copyOf('exit-on-error');
  await fs.writeFile(join(dir, 'extra.conf'), 'x\n');
  for (const n of await fs.readdir(join(dir, 'pg_wal'))) if (/^[0-9A-F]{24}$/.test(n)) await fs.rm(join(dir, 'pg_wal', n));
  const all = await verify(dir);
  assert.match(all.stderr, /pgbb: manifest: .*extra\.conf/);
  assert.match(all.stderr, /pgbb: WAL: /);
  const first = await verify('-e', dir);
  assert.equal(first.code, 1);
  assert.match(first.stderr, /extra\.conf/);
  assert.doesNotMatch(first.stderr, /WAL/);
});

test('-P shows pg_verifybackup\'s progress line on stderr, up to 100%', async () => {
  const r = await verify('-P', '-q', plain);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^\d+\/(\d+) kB \(0%\) verified\n/);
  assert.match(r.stderr, /(\d+)\/\1 kB \(100%\) verified\n$/);
});

test("another cluster's pg_control: pg_verifybackup passes (v1 manifest), pgbb verify names it — plain and tar", async () => {
  const foreign = await fs.readFile(join(other.dataDir, 'global', 'pg_control'));
  const dir = await copyOf('foreign-control');
  await fs.writeFile(join(dir, 'global', 'pg_control'), foreign);
  await verifybackup(dir); // blind to it: every valid pg_control has the same CRC32C
  const r = await verify(dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pgbb: pg_control: global\/pg_control is of system \d+, but the backup's pg_wal\/pgbb\.chunkmap records system \d+/);

  const tar = join(root, 'tar');
  const b = await runPgbb(['backup', ...connArgs(cluster), '-D', tar, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal((await verify(tar)).code, 0);
  await patchMember(join(tar, 'base.tar'), 'global/pg_control', 0, foreign);
  const t = await verify(tar);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /pgbb: pg_control: global\/pg_control is of system \d+, but the backup was taken from system \d+/);
});
