/**
 * S3 round trip against a real S3 API server (s3rver on loopback) and a
 * real PostgreSQL 15: `pgbb backup -D s3://…` → `pgbb list` → `pgbb verify`
 * → `pgbb restore` → start → same data. The objects are read back with the
 * AWS SDK as a user's script would, and pgbb's recorded sizes and CRC32Cs
 * checked against the downloaded bytes (s3rver stores no checksums).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { calculate as crc32c } from 'fast-crc32c';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { sharedS3Server, type S3TestServer } from '../support/s3-server';

const pg = useSampleServer({ fingerprint: true });
const shared = sharedS3Server(pg);
let s3: S3TestServer;
const server = async () => (s3 = await shared());

const pgbb = (args: string[]) => runPgbb(args, { env: s3.env });
const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

async function objectBytes(key: string): Promise<Buffer> {
  const r = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

test('S3: backup → list → verify → restore → start → same data; objects match the record', async () => {
  await server();
  const repo = `s3://${s3.bucket}/cluster-a`;
  const b = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--json']);
  assert.equal(b.code, 0, b.stderr);
  // --json: every stderr line one JSON object (no SDK warning in between).
  for (const line of b.stderr.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);

  const l = await pgbb(['list', repo, '--json']);
  assert.equal(l.code, 0, l.stderr);
  const rows = l.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.equal(rows.length, 1);
  assert.equal(rows[0].status, 'complete');
  assert.equal(rows[0].kind, 'full');
  assert.match(rows[0].startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  const id: string = rows[0].id;

  // As a user's script would: list the objects and read the record.
  const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `cluster-a/${id}/` }));
  const names = (listed.Contents ?? []).map((o) => o.Key!.slice(`cluster-a/${id}/`.length)).sort();
  assert.deepEqual(names, [`${pg.tsOid}.tar.zst`, 'backup.json', 'backup_manifest', 'base.tar.zst', 'chunkmap', 'pg_wal.tar.zst'].sort());
  const record = JSON.parse((await objectBytes(`cluster-a/${id}/backup.json`)).toString());
  assert.equal(record.id, id);
  for (const o of record.objects) {
    const bytes = await objectBytes(`cluster-a/${id}/${o.name}`);
    assert.equal(bytes.length, o.size, o.name);
    assert.equal(hex(crc32c(bytes)), o.crc32c, o.name);
  }
  assert.deepEqual(await s3.openUploads(), [], 'no multipart upload left open');

  const v = await pgbb(['verify', repo]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);

  const root = await pg.scratch('pgbb-s3-restore-');
  const target = join(root, 'data');
  const r = await pgbb(['restore', `${repo}/${id}`, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`]);
  assert.equal(r.code, 0, r.stderr);
  await pg.startAndCompare(target);
});

test('S3: a damaged object fails verify and restore, naming it; nothing restored', async () => {
  await server();
  const repo = `s3://${s3.bucket}/cluster-b`;
  const b = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast']);
  assert.equal(b.code, 0, b.stderr);
  const id = JSON.parse((await pgbb(['list', repo, '--json'])).stdout.trim()).id;
  // The same size, one digit of one file's size changed: still a manifest, no longer the one recorded.
  const key = `cluster-b/${id}/backup_manifest`;
  const text = (await objectBytes(key)).toString();
  const m = /"Size": \d*(\d)/.exec(text)!;
  const at = m.index + m[0].length - 1;
  const bytes = Buffer.from(text.slice(0, at) + String((Number(m[1]) + 1) % 10) + text.slice(at + 1));
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }));
  const v = await pgbb(['verify', repo]);
  assert.notEqual(v.code, 0);
  assert.match(v.stderr, /pgbb: error: .*backup_manifest has CRC32C [0-9a-f]{8}, the backup recorded [0-9a-f]{8}/);
  const root = await pg.scratch('pgbb-s3-bad-');
  const target = join(root, 'data');
  const r = await pgbb(['restore', repo, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /backup_manifest has CRC32C/);
});

test('S3: -r paces what the upload carries (the data, through the bucket the WAL stream shares); the paced backup verifies', async () => {
  await server();
  const repo = `s3://${s3.bucket}/paced`;
  const rateKiB = 4096;
  const started = performance.now();
  const b = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '-r', `${rateKiB}k`, '--json']);
  const wall = (performance.now() - started) / 1000;
  assert.equal(b.code, 0, b.stderr);
  const result = b.stderr.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'result');
  // The base backup's file data: the WAL segments are counted whole but only the WAL written since the start crossed
  // the network (and the limiter); a quiet server's segment is mostly zeros pgbb fills in.
  assert.ok(result.walBytes > 0, `the result counts the WAL apart: ${JSON.stringify(result)}`);
  const bytes: number = result.bytes - result.walBytes;
  assert.ok(bytes > 8 * 1024 * 1024, `a backup big enough to pace: ${bytes} bytes of data`);
  // The bucket holds a tenth of a second: no run moves more than that beyond rate × time.
  const least = (bytes - rateKiB * 1024 * 0.1) / (rateKiB * 1024);
  assert.ok(wall >= least, `${bytes} bytes in ${wall.toFixed(2)} s: faster than -r ${rateKiB}k allows (${least.toFixed(2)} s at least)`);
  assert.ok(result.seconds >= least, `result.seconds ${result.seconds} < ${least.toFixed(2)}`);
  const v = await pgbb(['verify', repo]);
  assert.equal(v.code, 0, v.stderr);
  // Without -r the same upload is quicker than the paced one would allow, or the pacing proves nothing here.
  const free = await pgbb(['backup', ...pg.conn(), '-D', `s3://${s3.bucket}/unpaced`, '-c', 'fast', '--json']);
  assert.equal(free.code, 0, free.stderr);
  const freeResult = free.stderr.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'result');
  assert.ok(freeResult.seconds < least, `unpaced ${freeResult.seconds} s is not below the paced bound ${least.toFixed(2)} s`);
});

test('S3: verify --objects-only checks every object against the record without downloading; a missing or resized object is named', async () => {
  await server();
  const repo = `s3://${s3.bucket}/objects-only`;
  const b = await pgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast']);
  assert.equal(b.code, 0, b.stderr);
  const id = JSON.parse((await pgbb(['list', repo, '--json'])).stdout.trim()).id;
  const record = JSON.parse((await objectBytes(`objects-only/${id}/backup.json`)).toString());
  // What S3 would keep for each (s3rver keeps none): one PutObject's CRC32C, base64, for objects under one part.
  for (const o of record.objects) {
    const bytes = await objectBytes(`objects-only/${id}/${o.name}`);
    const be = Buffer.alloc(4);
    be.writeUInt32BE(crc32c(bytes) >>> 0);
    if (bytes.length < 5 * 1024 * 1024) assert.equal(o.storeCrc32c, be.toString('base64'), o.name);
    else assert.match(o.storeCrc32c, /^[A-Za-z0-9+/]{6}==-\d+$/, o.name);
  }

  const ok = await pgbb(['verify', repo, '--objects-only']);
  assert.equal(ok.code, 0, ok.stderr);
  const n = record.objects.length;
  assert.match(ok.stdout, new RegExp(`^backup objects verified without downloading: ${n} objects of s3://\\S+/${id}, \\d+ bytes; 0 by the CRC32C the store keeps; ${n} by size only`));

  // Refused with what it cannot do, before anything is read.
  const mixed = await pgbb(['verify', repo, '--objects-only', '-m', '/tmp/x']);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /^pgbb: error: --objects-only reads no file of the backup: -m cannot go with it/m);
  const local = await pgbb(['verify', await pg.scratch('pgbb-oo-'), '--objects-only']);
  assert.equal(local.code, 1);
  assert.match(local.stderr, /--objects-only is only for s3:\/\/ sources/);

  // One archive one byte longer: named, nothing downloaded to find out.
  const wal = `objects-only/${id}/pg_wal.tar.zst`;
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: wal, Body: Buffer.concat([await objectBytes(wal), Buffer.from([0])]) }));
  const bad = await pgbb(['verify', `${repo}/${id}`, '--objects-only']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, new RegExp(`pgbb: error: .*${id}/pg_wal\\.tar\\.zst is \\d+ bytes, the backup recorded \\d+`));
});
