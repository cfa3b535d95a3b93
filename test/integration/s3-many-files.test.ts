/**
 * An S3 backup whose chunk map spills (past 1 MiB of records: tens of
 * thousands of files), encrypted, against a real PostgreSQL 15 and s3rver.
 * The sink uploads the map at its commit, after the stage that built it has
 * ended and been destroyed; a map larger than a part makes that upload wait
 * for the part to go, so it reads spilled records after the stage's end. They used to be gone by
 * then: "the temporary file for the chunk map was already released".
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { chownToPostgres } from '../support/cluster';
import { connArgs, testScratch } from '../support/scratch';
import { runPgbb } from '../support/pgbb';
import { startS3Server } from '../support/s3-server';

const scratchDirs = testScratch();
const FILES = 45_000;
/** Long names make long records: a map larger than one 5 MiB part, so that its upload waits for a part to go. */
const NAME = 'f'.padEnd(80, 'x'); // the server's tar names stop at 99 bytes
const PASS = 'pgbb-many-files-passphrase';

test('S3, encrypted: a backup of 45,000 files uploads its spilled chunk map at commit; listed complete, verifies', async () => {
  const cluster = await scratchDirs.cluster();
  const root = join(cluster.dataDir, 'pgbb_many');
  const body = Buffer.alloc(64, 0x61);
  for (let i = 0; i < FILES; i++) {
    const dir = join(root, String(Math.floor(i / 1000)));
    if (i % 1000 === 0) await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(join(dir, `${NAME}${i}`), body);
  }
  await chownToPostgres(root);
  const s3 = await startS3Server();
  scratchDirs.defer(() => s3.stop());
  const env = { ...s3.env, PGBB_ENCRYPT_PASSPHRASE: PASS };
  const repo = `s3://${s3.bucket}/many`;

  const b = await runPgbb(['backup', ...connArgs(cluster), '-D', repo, '-c', 'fast', '--s3-part-size', String(5 * 1024 * 1024), '--json'], { env });
  assert.equal(b.code, 0, b.stderr);
  const l = await runPgbb(['list', repo, '--json'], { env });
  assert.equal(l.code, 0, l.stderr);
  const rows = l.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.deepEqual(rows.map((r) => r.status), ['complete']);
  const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `many/${rows[0].id}/` }));
  const map = (listed.Contents ?? []).find((o) => o.Key!.endsWith('/chunkmap'));
  assert.ok(map && map.Size! > 5 * 1024 * 1024, `the chunk map is past a part: ${map?.Size}`);
  assert.deepEqual(await s3.openUploads(), [], 'no multipart upload left open');

  const v = await runPgbb(['verify', repo], { env });
  assert.equal(v.code, 0, v.stderr);
  const verified = /backup successfully verified: (\d+) files/.exec(v.stdout);
  assert.ok(verified && Number(verified[1]) > FILES, v.stdout);
});
