/**
 * S3 incremental chains against a real S3 API server (s3rver on loopback)
 * and a real PostgreSQL 15: a full backup and three incrementals, each
 * taken after the data changed (rows updated, a table created, one
 * truncated), listed with kind and parent, verified, restored from the last
 * link, checked by pg_verifybackup and started with the server's data.
 * Then what a chain refuses (--max-chain, a damaged link, a parent without
 * its record), --full, and expire keeping what an incremental needs.
 * An encrypted chain (age recipients) round trips the same way, its chunk
 * maps read through decryption; a chain half encrypted is refused.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readFile, rm, stat } from 'node:fs/promises';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { sharedS3Server, type S3TestServer } from '../support/s3-server';
import { dataFingerprint } from '../support/sample-data';
import { ageKeyFiles } from '../support/age-key-files';

const pg = useSampleServer();
const shared = sharedS3Server(pg);
let s3: S3TestServer;
const server = async () => (s3 = await shared());

const pgbb = (args: string[]) => runPgbb(args, { env: s3.env });

interface Row {
  id: string;
  kind: string;
  parent: string | null;
  status: string;
  bytes: number;
  storedBytes: number;
}

async function list(repo: string): Promise<Row[]> {
  const l = await pgbb(['list', repo, '--json']);
  assert.equal(l.code, 0, l.stderr);
  return l.stdout.trim().split('\n').filter(Boolean).map((x) => JSON.parse(x));
}

async function backup(repo: string, extra: string[] = []): Promise<Row> {
  const before = new Set((await list(repo)).map((r) => r.id));
  const b = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', ...extra]);
  assert.equal(b.code, 0, b.stderr);
  const added = (await list(repo)).filter((r) => !before.has(r.id));
  assert.equal(added.length, 1);
  return added[0];
}

/** Restored with -R (its files checked, then standby.signal removed so that it starts as a primary), pg_verifybackup, started, compared. */
async function restoreAndStart(source: string, expected: string, extra: string[] = []): Promise<void> {
  const root = await pg.scratch('pgbb-s3-chain-');
  const target = join(root, 'data');
  const r = await pgbb(['restore', source, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`, '-R', '--primary-conninfo', 'host=127.0.0.1 port=1', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await readFile(join(target, 'postgresql.auto.conf'), 'utf8'), /^primary_conninfo = 'host=127\.0\.0\.1 port=1'$/m);
  await rm(join(target, 'standby.signal'));
  await pg.verify(target);
  await pg.withStarted(target, async (restored) => assert.equal(await dataFingerprint(restored), expected));
}

test('S3 chain: full + 3 incrementals → list → verify → restore → pg_verifybackup → start → same data', async (t) => {
  await server();
  const repo = `s3://${s3.bucket}/chain-a`;
  const c = pg.cluster;
  const full = await backup(repo);
  assert.equal(full.kind, 'full');

  // 1% of the accounts' rows changed.
  await c.query('UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 100 = 0');
  const inc1 = await backup(repo, ['--incremental-from', 'latest']);
  assert.equal(inc1.kind, 'incremental');
  assert.equal(inc1.parent, full.id);
  const ratio = inc1.storedBytes / full.storedBytes;
  const objects = async (id: string) => {
    const r = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `chain-a/${id}/backup.json` }));
    return (JSON.parse(await r.Body!.transformToString()).objects as Array<{ name: string; size: number }>).map((o) => `${o.name} ${o.size}`).join(', ');
  };
  t.diagnostic(`stored: full ${full.storedBytes} B (${await objects(full.id)}); incremental after 1% of rows changed ${inc1.storedBytes} B (${await objects(inc1.id)}); ratio ${ratio.toFixed(3)}`);
  assert.ok(ratio < 0.5, `the incremental stored ${inc1.storedBytes} bytes, the full ${full.storedBytes}`);
  // Its size is the backup's it stands for, not only the chunks it uploaded.
  assert.ok(Math.abs(inc1.bytes - full.bytes) < full.bytes * 0.1, `incremental ${inc1.bytes} bytes, full ${full.bytes}`);

  // A new table, rows gone from the tablespace's table.
  await c.query('CREATE TABLE chain_new AS SELECT i, md5(i::text) AS h FROM generate_series(1, 5000) i');
  await c.query('DELETE FROM pgbb_ts_rows WHERE id % 3 = 0');
  const inc2 = await backup(repo, ['--incremental-from', `${repo}/${inc1.id}`]);
  assert.equal(inc2.parent, inc1.id);

  // A truncated table: its old file goes, a new one comes.
  await c.query('TRUNCATE pgbench_tellers');
  await c.query('INSERT INTO pgbench_tellers SELECT i, 1, 0 FROM generate_series(1, 10) i');
  const expected = await dataFingerprint(c);
  const inc3 = await backup(repo, ['--incremental-from', `${repo}/latest`]);
  assert.equal(inc3.parent, inc2.id);

  const rows = await list(repo);
  assert.deepEqual(rows.map((r) => [r.kind, r.parent, r.status]), [
    ['full', null, 'complete'],
    ['incremental', full.id, 'complete'],
    ['incremental', inc1.id, 'complete'],
    ['incremental', inc2.id, 'complete'],
  ]);
  // Every backup keeps its chunk map beside its record, as a user's script sees it.
  const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `chain-a/${inc3.id}/` }));
  assert.ok((listed.Contents ?? []).some((o) => o.Key === `chain-a/${inc3.id}/chunkmap`));
  const rec = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `chain-a/${inc3.id}/backup.json` }));
  const record = JSON.parse(await rec.Body!.transformToString());
  assert.equal(record.kind, 'incremental');
  assert.equal(record.parent, inc2.id);

  const v = await pgbb(['verify', repo]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);

  await restoreAndStart(repo, expected);
});

test('S3 chain: --max-chain refuses a longer chain, --full starts a new one; expire keeps what an incremental needs', async () => {
  await server();
  const repo = `s3://${s3.bucket}/chain-b`;
  const c = pg.cluster;
  // Refused before the server is asked for anything: no parent yet, one in another repository, a bad name.
  for (const [from, why] of [
    ['latest', /^pgbb: error: s3:\/\/\S+\/chain-b holds no complete backup to be incremental from: take a full backup first\n$/],
    [`s3://${s3.bucket}/elsewhere/latest`, /^pgbb: error: --incremental-from names \S+, which is not in s3:\/\/\S+\/chain-b: an incremental backup stands on a backup of its own repository\n$/],
    ['yesterday', /^pgbb: error: with an s3:\/\/ target --incremental-from takes latest, a backup id or s3:\/\/…\/<id>, not "yesterday"\n$/],
  ] as const) {
    const r = await pgbb(['backup', ...pg.conn(), '-D', repo, '--incremental-from', from]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, why);
  }
  assert.equal((await list(repo)).length, 0);
  const full = await backup(repo);
  const inc1 = await backup(repo, ['--incremental-from', 'latest', '--max-chain', '1']);
  assert.equal(inc1.parent, full.id);

  const refused = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--incremental-from', 'latest', '--max-chain', '1']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /^pgbb: error: an incremental backup on s3:\/\/\S+ would make its chain 2 incrementals long, more than --max-chain 1: take a full backup \(--full\)\n$/);
  assert.equal((await list(repo)).length, 2, 'nothing uploaded');

  const full2 = await backup(repo, ['--incremental-from', 'latest', '--full']);
  assert.equal(full2.kind, 'full');
  assert.equal(full2.parent, null);

  // An incremental on the older chain, after the newer full: the older full and inc1 are still needed.
  await c.query('UPDATE pgbench_branches SET bbalance = bbalance + 1');
  const inc2 = await backup(repo, ['--incremental-from', `${repo}/${inc1.id}`]);
  assert.equal(inc2.parent, inc1.id);
  const e = await pgbb(['expire', repo, '--retain-full', '1']);
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual((await list(repo)).map((r) => r.id), [full.id, inc1.id, full2.id, inc2.id]);

  // A dry run says so too.
  const e2 = await pgbb(['expire', repo, '--retain-full', '1', '--dry-run']);
  assert.equal(e2.code, 0, e2.stderr);
  assert.match(e2.stdout, /0 backup\(s\) would remove, 4 kept/);

  // A damaged link (same size, one byte changed): the restore fails naming it and removes what it restored.
  const key = `chain-b/${inc2.id}/base.tar.zst`;
  const got = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  const damaged = Buffer.from(await got.Body!.transformToByteArray());
  damaged[damaged.length >> 1] ^= 0x55;
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: damaged }));
  const root = await pg.scratch('pgbb-s3-chain-bad-');
  const target = join(root, 'data');
  const r = await pgbb(['restore', `${repo}/${inc2.id}`, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^pgbb: error: .*base\.tar\.zst/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  await assert.rejects(stat(target), { code: 'ENOENT' });
  await assert.rejects(stat(`${target}-ts`), { code: 'ENOENT' });

  // A parent that lost its record: the chain is refused naming it, and expire still keeps it for inc2.
  await s3.client().send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `chain-b/${inc1.id}/backup.json` }));
  const r2 = await pgbb(['restore', `${repo}/${inc2.id}`, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`]);
  assert.notEqual(r2.code, 0);
  assert.equal(r2.stderr, `pgbb: error: ${repo}/${inc1.id}, the parent of ${inc2.id}, is missing or incomplete: the chain cannot be rebuilt\n`);
  await assert.rejects(stat(target), { code: 'ENOENT' });
  const v = await pgbb(['verify', `${repo}/${inc1.id}`, '--allow-incomplete']);
  assert.equal(v.stderr, `pgbb: error: ${repo}/${inc1.id} is an incomplete incremental backup (it has no backup.json): it cannot be read\n`);
  const e3 = await pgbb(['expire', repo, '--retain-full', '1', '--grace-hours', '0', '--dry-run']);
  assert.equal(e3.code, 0, e3.stderr);
  assert.doesNotMatch(e3.stdout, new RegExp(inc1.id));
});

test('S3 chain, encrypted to age recipients: full + 2 incrementals → list → verify → restore → start → same data; half-encrypted chains and a missing identity refused', async () => {
  await server();
  const repo = `s3://${s3.bucket}/chain-enc`;
  const c = pg.cluster;
  const root = await pg.scratch('pgbb-s3-chain-keys-');
  const { recipients, keyFile, otherKey } = await ageKeyFiles(root);
  const enc = ['--encrypt-recipients-file', recipients];
  const withKey = [...enc, '--encrypt-identity-file', keyFile];
  const full = await backup(repo, enc);

  // Refused with nothing uploaded: no identity to read the parent's chunk map, the wrong one, a plain incremental on it.
  for (const [extra, why] of [
    [enc, /^pgbb: error: s3:\/\/\S+ is encrypted: reading its chunk map needs a key that opens it \(the passphrase, or --encrypt-identity-file with --encrypt-recipients-file\)\n$/],
    [[...enc, '--encrypt-identity-file', otherKey], /^pgbb: error: s3:\/\/\S+\/chunkmap: wrong key \(not encrypted to the passphrase or identities given\)\n$/],
    [[], /^pgbb: error: s3:\/\/\S+ is encrypted \("age"\): an incremental backup on it must be encrypted too \(give its key\), or take a full backup \(--full\)\n$/],
    [['--encrypt-identity-file', keyFile], /^pgbb: error: --encrypt-identity-file on backup reads an encrypted parent: it needs -D s3:\/\/…, --incremental-from and --encrypt-recipients-file\n$/],
  ] as const) {
    const r = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--incremental-from', 'latest', ...extra]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, why);
  }
  assert.equal((await list(repo)).length, 1, 'nothing uploaded');

  await c.query('UPDATE pgbench_accounts SET abalance = abalance + 3 WHERE aid % 50 = 0');
  const inc1 = await backup(repo, [...withKey, '--incremental-from', 'latest']);
  assert.equal(inc1.parent, full.id);
  assert.ok(inc1.storedBytes < full.storedBytes / 2, `the incremental stored ${inc1.storedBytes} bytes, the full ${full.storedBytes}`);
  // Its chunk map is encrypted like its archives, as a user's script sees it.
  const map = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `chain-enc/${inc1.id}/chunkmap` }));
  assert.ok(Buffer.from(await map.Body!.transformToByteArray()).subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n')), 'the chunk map is an age file');

  await c.query('DELETE FROM pgbb_ts_rows WHERE id % 5 = 0');
  await c.query('CREATE TABLE chain_enc AS SELECT i FROM generate_series(1, 3000) i');
  const expected = await dataFingerprint(c);
  const inc2 = await backup(repo, [...withKey, '--incremental-from', `${repo}/${inc1.id}`]);
  assert.equal(inc2.parent, inc1.id);
  assert.deepEqual((await list(repo)).map((r) => [r.kind, r.parent, r.status]), [
    ['full', null, 'complete'],
    ['incremental', full.id, 'complete'],
    ['incremental', inc1.id, 'complete'],
  ]);

  const keyless = await pgbb(['verify', repo]);
  assert.notEqual(keyless.code, 0);
  assert.match(keyless.stderr, /^pgbb: error: s3:\/\/\S+ was written through "age": give the matching key to read it/);
  const v = await pgbb(['verify', repo, '--encrypt-identity-file', keyFile]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);
  await restoreAndStart(repo, expected, ['--encrypt-identity-file', keyFile]);

  // A plain full backup, then an encrypted incremental on it: refused, nothing uploaded.
  const plain = await backup(repo, ['--full']);
  const r = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--incremental-from', `${repo}/${plain.id}`, ...withKey]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr, `pgbb: error: ${repo}/${plain.id} is not encrypted: an encrypted backup cannot be an incremental on it; take a full backup (--full)\n`);
  assert.equal((await list(repo)).length, 4, 'nothing uploaded');
});
