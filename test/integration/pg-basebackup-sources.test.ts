/**
 * pg_basebackup's own backups as sources (tar, and plain -Fp), against a real PostgreSQL 15
 * with a tablespace: `-Ft` (stream WAL in pg_wal.tar), `--compress
 * client-zstd`, `-z` (gzip), `--compress server-zstd`, `-X fetch` verify
 * with pgbb (no pgbb descriptor: it is derived from backup_label,
 * tablespace_map and pg_control); a damaged member fails, naming it;
 * `client-lz4`, `server-lz4` and `server-gzip` verify, and gzip, lz4 and zstd ones restore (-T)
 * and start with the same data; a truncated or corrupted .lz4 fails naming
 * the file; `-Fp` verifies and restores; `-D - -Ft` (plain and -z) piped into
 * `verify -` and `restore -` is spooled, checked, restored and started, and
 * cut short fails in one line. Every backup is made here by pg_basebackup itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, fillSampleData } from '../support/cluster';
import { run } from '../support/run';
import { PGBB_CLI, runPgbb } from '../support/pgbb';
import { assertStartsLike } from '../support/restore-compare';
import { testScratch } from '../support/scratch';
import { patchMember } from '../support/tar-offset';

const scratch = testScratch();
let cluster: Cluster;
let root: string;
let tsLocation: string;
let tsOid: string;

before(async () => {
  cluster = await scratch.cluster();
  await fillSampleData(cluster, { scale: 1 });
  [{ oid: tsOid, loc: tsLocation }] = await cluster.query<{ oid: string; loc: string }>(
    `SELECT oid::text, pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`,
  );
  root = await scratch.dir('pgbb-pgbb-src-');
});

async function pgBasebackup(name: string, args: string[]): Promise<string> {
  const dir = join(root, name);
  await run(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-c', 'fast', '-D', dir, ...args]);
  return dir;
}

for (const [name, args, archives] of [
  ['tar', ['-Ft'], ['base.tar', `pg_wal.tar`]],
  ['client-zstd', ['-Ft', '--compress', 'client-zstd'], ['base.tar.zst']],
  ['gzip', ['-Ft', '-z'], ['base.tar.gz', 'pg_wal.tar.gz']],
  ['server-zstd', ['-Ft', '--compress', 'server-zstd:1'], ['base.tar.zst']],
  ['client-lz4', ['-Ft', '--compress', 'client-lz4'], ['base.tar.lz4']],
  ['server-lz4', ['-Ft', '--compress', 'server-lz4:1'], ['base.tar.lz4']],
  ['server-gzip', ['-Ft', '--compress', 'server-gzip:1'], ['base.tar.gz']],
  ['fetch', ['-Ft', '-X', 'fetch'], ['base.tar']],
] as const) {
  test(`pg_basebackup ${args.join(' ')}: pgbb verify passes, pages and WAL checked`, async () => {
    const dir = await pgBasebackup(name, [...args]);
    const names = await fs.readdir(dir);
    for (const a of archives) assert.ok(names.includes(a), `${a} in ${names.join(' ')}`);
    assert.ok(names.some((n) => n.startsWith(`${tsOid}.tar`)), 'a tablespace archive');
    const r = await runPgbb(['verify', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /backup successfully verified: \d+ files/);
    const pages = Number(/(\d+) pages/.exec(r.stdout)![1]);
    assert.ok(pages > 1000, `pages checked: ${pages}`);
    assert.match(r.stdout, /\(1 segments, \d+ records\)/);
  });
}

test('a damaged relation file in pg_basebackup -Ft base.tar fails verify, naming the file', async () => {
  const dir = await pgBasebackup('damaged', ['-Ft']);
  const [{ path: rel }] = await cluster.query<{ path: string }>(`SELECT pg_relation_filepath('pgbench_accounts') AS path`);
  const tar = join(dir, 'base.tar');
  // Inside the second page, past its header: the page checksum and the file's CRC32C both change.
  await patchMember(tar, rel, 8192 + 4000, Buffer.from('deadbeefdeadbeef', 'hex'));
  const r = await runPgbb(['verify', dir]);
  assert.notEqual(r.code, 0);
  assert.ok((r.stdout + r.stderr).includes(rel), r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /checksum/);
});

test('pg_basebackup -Ft --compress client-lz4: a truncated or corrupted .lz4 fails verify and restore in one line naming the file', async () => {
  const good = join(root, 'client-lz4');
  await fs.stat(good).catch(() => pgBasebackup('client-lz4', ['-Ft', '--compress', 'client-lz4']));
  const cases: [string, string, (b: Buffer) => Buffer, RegExp][] = [
    ['lz4-truncated', 'base.tar.lz4', (b) => b.subarray(0, b.length >> 1), /truncated lz4 data in "[^"]*base\.tar\.lz4": it ends inside a frame/],
    // The first block's size word (after magic, FLG, BD, header checksum) made larger than the frame allows.
    ['lz4-corrupt', `${tsOid}.tar.lz4`, (b) => (b[9] ^= 0x40, b), new RegExp(`corrupt lz4 data in "[^"]*${tsOid}\\.tar\\.lz4": block of \\d+ bytes, more than the frame's maximum`)],
  ];
  for (const [name, file, damage, re] of cases) {
    const dir = join(root, name);
    await fs.cp(good, dir, { recursive: true });
    await fs.writeFile(join(dir, file), damage(await fs.readFile(join(dir, file))));
    for (const cmd of [['verify', dir], ['restore', dir, '-D', join(root, `${name}-restored`), '-T', `${tsLocation}=${join(root, `${name}-ts`)}`]]) {
      const r = await runPgbb(cmd);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^pgbb: error: .*${re.source}[^\n]*\n$`), `${cmd[0]} ${name}`);
    }
    await assert.rejects(fs.stat(join(root, `${name}-restored`)), 'a failed restore leaves no target');
  }
});

test('pg_basebackup -Ft --compress client-lz4: a flipped byte inside a block fails verify by the manifest, naming the member', async () => {
  // pg_basebackup's frames carry no content checksum (lz4 --list says so): the manifest's CRC32C is what catches it.
  const dir = join(root, 'lz4-flipped');
  await fs.cp(join(root, 'client-lz4'), dir, { recursive: true });
  const file = join(dir, `${tsOid}.tar.lz4`);
  const b = await fs.readFile(file);
  b[b.length >> 1] ^= 0x20;
  await fs.writeFile(file, b);
  const r = await runPgbb(['verify', dir]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /(does not match its manifest: "pg_tblspc\/\d+\/PG_15_\d+\/|corrupt lz4 data in "[^"]*\.tar\.lz4")/);
});

for (const [name, args] of [
  ['gzip', ['-Ft', '-z']],
  ['server-zstd', ['-Ft', '--compress', 'server-zstd:1']],
  ['client-zstd', ['-Ft', '--compress', 'client-zstd']],
  ['client-lz4', ['-Ft', '--compress', 'client-lz4']],
  ['server-lz4', ['-Ft', '--compress', 'server-lz4:1']],
] as const) {
  test(`pg_basebackup ${args.join(' ')} restores with -T and starts with the same data`, async () => {
    const dir = join(root, name);
    await fs.stat(dir).catch(() => pgBasebackup(name, [...args]));
    const target = join(root, `${name}-restored`);
    const r = await runPgbb(['restore', dir, '-D', target, '-N', '-T', `${tsLocation}=${target}-ts`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readlinkSync(join(target, 'pg_tblspc', tsOid)), `${target}-ts`);
    // The map would have PostgreSQL point the link back at the recorded location.
    assert.throws(() => lstatSync(join(target, 'tablespace_map')), /ENOENT/);
    await assertStartsLike(target, cluster);
  });
}

test('pg_basebackup -Fp (with -T): pgbb verify passes, pages and WAL checked; pgbb restore of it starts with the same data', async () => {
  const dir = await pgBasebackup('plain', ['-Fp', '-T', `${tsLocation}=${join(root, 'plain-ts')}`]);
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified: \d+ files/);
  assert.ok(Number(/(\d+) pages/.exec(v.stdout)![1]) > 1000, v.stdout);
  assert.match(v.stdout, /\(1 segments, \d+ records\)/);
  const target = join(root, 'plain-restored');
  const r = await runPgbb(['restore', dir, '-D', target, '-N', '-T', `${join(root, 'plain-ts')}=${target}-ts`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readlinkSync(join(target, 'pg_tblspc', tsOid)), `${target}-ts`);
  await assertStartsLike(target, cluster);
});

/** `pg_basebackup -D - -Ft ARGS | pgbb CMD -` through a real pipe, with TMPDIR (the spool's parent) given. */
function piped(pgArgs: string[], pgbbArgs: string[], tmp: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const pg = spawn(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-c', 'fast', '-D', '-', '-Ft', ...pgArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pgbb = spawn(process.execPath, [PGBB_CLI, ...pgbbArgs], { env: { ...process.env, TMPDIR: tmp }, stdio: ['pipe', 'pipe', 'pipe'] });
    pg.stdout.pipe(pgbb.stdin);
    pgbb.stdin.on('error', () => {});
    let stdout = '';
    let stderr = '';
    pgbb.stdout.on('data', (c) => (stdout += c));
    pgbb.stderr.on('data', (c) => (stderr += c));
    pg.on('error', reject);
    pgbb.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('pg_basebackup -D - -Ft piped into pgbb verify - and restore - (plain and -z): spooled, verified, restored, started; the spool is gone after', async () => {
  // pg_basebackup writes only a single tablespace to stdout: this last test moves the data out of pgbb_ts and drops it.
  await cluster.query('ALTER TABLE pgbb_ts_rows SET TABLESPACE pg_default');
  await cluster.query('ALTER INDEX pgbb_ts_rows_pkey SET TABLESPACE pg_default');
  await cluster.query('DROP TABLESPACE pgbb_ts');
  const tmp = await scratch.dir('pgbb-spool-');
  for (const extra of [[], ['-z']]) {
    const v = await piped(['-X', 'fetch', ...extra], ['verify', '-'], tmp);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /backup successfully verified: \d+ files/);
    assert.match(v.stdout, /\(1 segments, \d+ records\)/, 'the fetched WAL checked');
    assert.deepEqual(await fs.readdir(tmp), [], 'spool removed');
  }
  const target = join(root, 'stdout-restored');
  const r = await piped(['-X', 'fetch', '-z'], ['restore', '-', '-D', target, '-N'], tmp);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readdir(tmp), [], 'spool removed');
  assert.ok(lstatSync(join(target, 'backup_manifest')).isFile(), 'the manifest from the member');
  await assertStartsLike(target, cluster);
});

test('pg_basebackup -D - -Ft cut short on stdin: one line, nothing restored, no spool left', async () => {
  const dir = join(root, 'stdout');
  await fs.mkdir(dir, { recursive: true });
  const file = join(dir, 'base.tar');
  const out = await fs.open(file, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-c', 'fast', '-D', '-', '-Ft', '-X', 'fetch'], { stdio: ['ignore', out.fd, 'inherit'] });
      child.on('error', reject).on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_basebackup exited ${code}`))));
    });
  } finally {
    await out.close();
  }
  const whole = await fs.readFile(file);
  const tmp = await scratch.dir('pgbb-spool-cut-');
  const target = join(root, 'cut-restored');
  for (const cmd of [['verify', '-'], ['restore', '-', '-D', target]]) {
    const r = await runPgbb(cmd, { input: whole.subarray(0, whole.length >> 1), env: { TMPDIR: tmp } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^pgbb: error: [^\n]*standard input[^\n]*\n$/);
    assert.deepEqual(await fs.readdir(tmp), [], 'spool removed');
  }
  await assert.rejects(fs.stat(target));
  // Saved as base.tar in a directory, the whole stream verifies too.
  const v = await runPgbb(['verify', dir]);
  assert.equal(v.code, 0, v.stderr);
});
