/**
 * S3 uploads under faults, through a fault-injecting proxy in front of a
 * real S3 API server (s3rver): throttling (503 SlowDown), a connection
 * reset halfway through a part and a 200 carrying an error are retried and
 * the backup completes and verifies (its storage class and SSE-KMS key on
 * every object); a store that keeps failing fails the
 * backup, which aborts its multipart upload (no parts left in s3rver's
 * directory) and removes its objects; kill -9 mid-upload leaves a backup
 * that is listed incomplete, refused by restore, and removed by expire,
 * which aborts the upload it left open.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { PGBB_CLI, runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { startS3Server, type S3TestServer } from '../support/s3-server';
import { startFaultProxy, type FaultProxy } from '../support/s3-fault-proxy';

// Enough data that base.tar.zst takes several 5 MiB parts: md5 text compresses about 2:1.
const pg = useSampleServer({
  setup: (c) => c.psql("create table noise as select g, md5(random()::text) || md5(random()::text) || md5(random()::text) as t from generate_series(1, 250000) g"),
});
let s3: S3TestServer;
let proxy: FaultProxy;
const setup = async () => {
  if (!s3) {
    s3 = await startS3Server();
    pg.onCleanup(() => s3.stop());
    proxy = await startFaultProxy(s3.endpoint, [], { dir: s3.dir, bucket: s3.bucket });
    pg.onCleanup(() => proxy.stop());
  }
};
const env = () => ({ ...s3.env, AWS_ENDPOINT_URL: proxy.endpoint });
const pgbb = (args: string[]) => runPgbb(args, { env: env() });
const backupArgs = (repo: string) => ['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--s3-part-size', '5M'];

async function keys(prefix: string): Promise<string[]> {
  const r = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!);
}

async function listRows(repo: string): Promise<Array<{ id: string; status: string }>> {
  const l = await pgbb(['list', repo, '--json']);
  assert.equal(l.code, 0, l.stderr);
  return l.stdout.trim() === '' ? [] : l.stdout.trim().split('\n').map((x) => JSON.parse(x));
}

test('S3 faults: SlowDown, a reset mid-part and a 200 with an error body are retried; the backup completes and verifies; storage class and SSE-KMS key reach every object', async () => {
  await setup();
  proxy.setRules([
    { op: 'UploadPart', fault: 'slowdown', nth: [1] },
    { op: 'UploadPart', fault: 'reset', nth: [3] },
    { op: 'CompleteMultipartUpload', fault: 'error-200', nth: [1] },
  ]);
  const repo = `s3://${s3.bucket}/retry`;
  const kmsBefore = proxy.kmsKeys.length;
  const b = await pgbb([...backupArgs(repo), '--s3-storage-class', 'STANDARD_IA', '--s3-sse-kms-key-id', 'alias/pgbb-test']);
  proxy.setRules([]);
  assert.equal(b.code, 0, b.stderr);
  // Every object the backup began asked for the KMS key (s3rver keeps no SSE state) and is stored in the class given.
  const begun = proxy.kmsKeys.slice(kmsBefore);
  assert.ok(begun.length >= 4, JSON.stringify(begun));
  assert.deepEqual(begun.filter((o) => o.kmsKeyId !== 'alias/pgbb-test'), []);
  for (const key of await keys('retry/')) {
    const h = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.equal(h.StorageClass, 'STANDARD_IA', key);
  }
  assert.deepEqual([...proxy.injected].sort(), ['CompleteMultipartUpload:error-200', 'UploadPart:reset', 'UploadPart:slowdown']);
  assert.ok(proxy.partChecksums.length >= 3, `${proxy.partChecksums.length} parts`);
  assert.deepEqual(proxy.partChecksums.filter((c) => c === null), [], 'every part carries a CRC32C for the store to check');
  const rows = await listRows(repo);
  assert.deepEqual(rows.map((r) => r.status), ['complete']);
  const v = await pgbb(['verify', repo]);
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual(await s3.openUploads(), []);
});

test('S3 faults: parts that keep failing fail the backup, which aborts its upload and removes its objects', async () => {
  await setup();
  const before = proxy.seen.UploadPart ?? 0;
  // The first part of each upload goes through, every later one is throttled for good: an upload is open when the backup fails.
  proxy.setRules([{ op: 'UploadPart', fault: 'slowdown', nth: Array.from({ length: 400 }, (_, i) => before + 2 + i) }]);
  const repo = `s3://${s3.bucket}/failing`;
  const b = await pgbb(backupArgs(repo));
  proxy.setRules([]);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /^pgbb: error: could not upload s3:\/\/pgbb-test\/failing\/[^ ]+\/base\.tar\.zst: SlowDown, HTTP 503/m);
  assert.doesNotMatch(b.stderr, /S3RVER|    at /, 'no credentials, no stack trace');
  assert.deepEqual(await keys('failing/'), [], 'the failed backup removed what it created');
  assert.deepEqual(await listRows(repo), []);
  const open = await s3.openUploads();
  assert.ok(open.length >= 1, 'the backup failed with an upload open');
  assert.deepEqual(open.filter((u) => !proxy.aborted.includes(u)), [], 'every upload left open was aborted by pgbb');
});

test('S3 faults: kill -9 mid-upload leaves an incomplete backup: listed so, refused by restore, removed by expire, which aborts its open upload', async () => {
  await setup();
  const repo = `s3://${s3.bucket}/killed`;
  // A complete one first, so that "newest complete" has an answer that is not the killed one.
  assert.equal((await pgbb(backupArgs(repo))).code, 0);
  proxy.setRules([{ op: 'UploadPart', fault: 'hold', nth: [(proxy.seen.UploadPart ?? 0) + 2] }]);
  // Its WAL spool goes in $TMPDIR, and a killed process cannot remove it: a scratch TMPDIR of the test's, removed after.
  const tmp = await pg.scratch('pgbb-killed-tmp-');
  const child = spawn(process.execPath, [PGBB_CLI, ...backupArgs(repo)], { env: { ...process.env, ...env(), TMPDIR: tmp }, stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  await proxy.held;
  child.kill('SIGKILL');
  await exited;
  proxy.setRules([]);
  const left = (await s3.openUploads()).filter((u) => !proxy.aborted.includes(u));
  assert.ok(left.length >= 1, 'the killed backup left its upload open');
  const rows = await listRows(repo);
  assert.deepEqual(rows.map((r) => r.status), ['complete', 'incomplete']);
  const killed = rows[1].id;
  const v = await pgbb(['verify', `${repo}/${killed}`]);
  assert.notEqual(v.code, 0);
  assert.match(v.stderr, /is incomplete \(it has no backup\.json\): pass --allow-incomplete/);
  // Without an id the newest complete backup is read, never the killed one.
  const good = await pgbb(['verify', repo, '-q']);
  assert.equal(good.code, 0, good.stderr);
  // A young incomplete backup may still be uploading: kept within the grace period, removed after it.
  const kept = await pgbb(['expire', repo, '--retain-full', '1', '--json']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.equal(kept.stdout, '');
  const dry = await pgbb(['expire', repo, '--retain-full', '1', '--grace-hours', '0', '--dry-run', '--json']);
  assert.deepEqual(JSON.parse(dry.stdout.trim()), { id: killed, action: 'would-remove', reason: 'incomplete, older than the grace period' });
  assert.equal((await listRows(repo)).length, 2, '--dry-run removed nothing');
  const ex = await pgbb(['expire', repo, '--retain-full', '1', '--grace-hours', '0']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, new RegExp(`removed ${killed.replace('.', '\\.')} \\(incomplete`));
  assert.deepEqual((await listRows(repo)).map((r) => r.status), ['complete']);
  assert.deepEqual((await keys(`killed/${killed}/`)), []);
  // The upload it left open was aborted by expire (listed through the proxy: s3rver cannot list uploads).
  assert.deepEqual(left.filter((u) => !proxy.aborted.includes(u)), []);
});

test('S3 faults: a slow CompleteMultipartUpload holds nothing up: the WAL archive and manifest go up while the store assembles base.tar.zst, the record after every Complete', async () => {
  await setup();
  const from = proxy.log.length;
  proxy.setRules([{ op: 'CompleteMultipartUpload', fault: 'delay', ms: 1500, key: /\/base\.tar\.zst$/ }]);
  const repo = `s3://${s3.bucket}/slowcomplete`;
  const b = await pgbb(backupArgs(repo));
  proxy.setRules([]);
  assert.equal(b.code, 0, b.stderr);
  const log = proxy.log.slice(from);
  const named = (op: string, name: string) => log.filter((r) => r.op === op && r.key.endsWith(`/${name}`));
  const [complete] = named('CompleteMultipartUpload', 'base.tar.zst');
  assert.ok(complete, JSON.stringify(log.map((r) => `${r.op} ${r.key}`)));
  const wal = log.find((r) => r.key.endsWith('/pg_wal.tar.zst'));
  const manifest = log.find((r) => r.key.endsWith('/backup_manifest'));
  assert.ok(wal && manifest, 'the WAL archive and the manifest were uploaded');
  assert.ok(wal.began < complete.answered, `the WAL archive began ${(complete.answered - wal.began).toFixed(0)} ms before base.tar.zst was complete`);
  assert.ok(manifest.began < complete.answered, 'the manifest went up while base.tar.zst was being completed');
  const [record] = named('PutObject', 'backup.json');
  const completes = log.filter((r) => r.op === 'CompleteMultipartUpload' || (r.op === 'PutObject' && !r.key.endsWith('/backup.json') && !r.key.endsWith('/backup.started')));
  for (const c of completes) assert.ok(record.began >= c.answered, `the record was written after ${c.op} ${c.key} was answered`);
  assert.deepEqual((await listRows(repo)).map((r) => r.status), ['complete']);
  const v = await pgbb(['verify', repo]);
  assert.equal(v.code, 0, v.stderr);
});

test('S3 faults: a CompleteMultipartUpload that fails while the next objects go up fails the backup, which removes them all and aborts its upload', async () => {
  await setup();
  const from = proxy.log.length;
  // Every try refused, each after 700 ms: the WAL archive is on its way before the store refuses for good.
  proxy.setRules([{ op: 'CompleteMultipartUpload', fault: 'error-200', ms: 700, key: /\/base\.tar\.zst$/ }]);
  const repo = `s3://${s3.bucket}/completefails`;
  const b = await pgbb(backupArgs(repo));
  proxy.setRules([]);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /^pgbb: error: could not upload s3:\/\/pgbb-test\/completefails\/[^ ]+\/base\.tar\.zst: /m);
  assert.doesNotMatch(b.stderr, /S3RVER|    at /, 'no credentials, no stack trace');
  const log = proxy.log.slice(from);
  assert.ok(log.some((r) => r.key.endsWith('/pg_wal.tar.zst')), 'the WAL archive went up before the Complete failed');
  assert.deepEqual(await keys('completefails/'), [], 'the failed backup removed what it created');
  assert.deepEqual(await listRows(repo), []);
  assert.deepEqual((await s3.openUploads()).filter((u) => !proxy.aborted.includes(u)), [], 'every upload left open was aborted by pgbb');
});

test('S3 faults: a backup_manifest or chunkmap the store keeps refusing fails the backup: no record, nothing left', async () => {
  await setup();
  for (const name of ['backup_manifest', 'chunkmap']) {
    proxy.setRules([{ op: 'PutObject', fault: 'slowdown', key: new RegExp(`/${name}$`) }]);
    const repo = `s3://${s3.bucket}/refused-${name}`;
    const b = await pgbb(backupArgs(repo));
    proxy.setRules([]);
    assert.notEqual(b.code, 0, `${name}: ${b.stderr}`);
    assert.match(b.stderr, new RegExp(`^pgbb: error: could not upload s3://pgbb-test/refused-${name}/[^ ]+/${name}: SlowDown, HTTP 503`, 'm'));
    assert.deepEqual(await keys(`refused-${name}/`), [], `${name}: the failed backup removed what it created`);
    assert.deepEqual(await listRows(repo), []);
  }
});

test('S3 faults: a Complete that fails while the manifest is still going up: the cleanup waits for it, nothing lands after', async () => {
  await setup();
  proxy.setRules([
    { op: 'CompleteMultipartUpload', fault: 'error-200', ms: 300, key: /\/base\.tar\.zst$/ },
    // Answered (and stored) well after the Complete has failed for good.
    { op: 'PutObject', fault: 'delay', ms: 4000, key: /\/backup_manifest$/ },
  ]);
  const repo = `s3://${s3.bucket}/latemanifest`;
  const from = proxy.log.length;
  const b = await pgbb(backupArgs(repo));
  proxy.setRules([]);
  // Until the held manifest has reached the store, whenever pgbb gave up on it.
  const held = proxy.log.slice(from).find((r) => r.key.endsWith('/backup_manifest'));
  assert.ok(held, 'the manifest was sent');
  await new Promise((r) => setTimeout(r, Math.max(0, held.began + 4500 - performance.now())));
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /^pgbb: error: could not upload s3:\/\/pgbb-test\/latemanifest\/[^ ]+\/base\.tar\.zst: /m);
  assert.deepEqual(await keys('latemanifest/'), [], 'nothing left behind, the manifest included');
  assert.deepEqual(await listRows(repo), []);
  assert.deepEqual((await s3.openUploads()).filter((u) => !proxy.aborted.includes(u)), []);
});
