/**
 * S3 credentials the way a DBA's machine holds them: a profile in a shared
 * credentials file (AWS_PROFILE, no key in the environment) with a session
 * token, against s3rver and a real PostgreSQL 15. The key, the secret and
 * the token never appear in what pgbb prints (-v, --json, errors) nor in
 * any object it stores; an unknown key fails in one line without them.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Decompressor } from 'zstd-napi';
import { runPgbb, type PgbbRun } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { S3_TEST_KEY, sharedS3Server } from '../support/s3-server';

const pg = useSampleServer();
const shared = sharedS3Server(pg);
const TOKEN = 'pgbb-test-session-token-7Qx2v';

function withoutKeys(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...rest } = env;
  return rest;
}

function assertNoSecret(what: string, text: string | Buffer, secrets: string[]): void {
  const s = Buffer.isBuffer(text) ? text.toString('latin1') : text;
  for (const secret of secrets) assert.ok(!s.includes(secret), `${what} holds "${secret}"`);
}

test('S3 credentials from a profile with a session token: backup, list, verify, restore work, and no key, secret or token is printed or stored', async () => {
  const s3 = await shared();
  const dir = await pg.scratch('pgbb-s3-creds-');
  const credentials = join(dir, 'credentials');
  // s3rver accepts one key pair (S3RVER / S3RVER); the token rides along as AWS_SESSION_TOKEN would.
  await fs.writeFile(credentials, `[pgbb-test]\naws_access_key_id = ${S3_TEST_KEY.id}\naws_secret_access_key = ${S3_TEST_KEY.secret}\naws_session_token = ${TOKEN}\n`, { mode: 0o600 });
  const env = { ...withoutKeys(s3.env), AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_PROFILE: 'pgbb-test' };
  const secrets = [S3_TEST_KEY.secret, TOKEN];
  const repo = `s3://${s3.bucket}/creds`;
  const runs: [string, PgbbRun][] = [];
  const pgbb = async (name: string, args: string[]) => {
    const r = await runPgbb(args, { env });
    runs.push([name, r]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    return r;
  };
  await pgbb('backup', ['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '-v', '--json']);
  await pgbb('list', ['list', repo]);
  await pgbb('list --json', ['list', repo, '--json']);
  await pgbb('verify', ['verify', repo]);
  await pgbb('verify --objects-only', ['verify', repo, '--objects-only']);
  const target = join(dir, 'data');
  await pgbb('restore', ['restore', repo, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`]);
  for (const [name, r] of runs) {
    assertNoSecret(`${name}'s stdout`, r.stdout, secrets);
    assertNoSecret(`${name}'s stderr`, r.stderr, secrets);
  }

  // Every object, read back as a user's script would; the archives decompressed.
  const client = s3.client();
  const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'creds/' }));
  assert.ok((listed.Contents ?? []).length >= 5, 'the backup stored its objects');
  for (const o of listed.Contents ?? []) {
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: o.Key! }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assertNoSecret(o.Key!, o.Key!.endsWith('.zst') ? new Decompressor().decompress(bytes) : bytes, secrets);
  }

  // A key the store does not know (s3rver checks key ids, not v4 signatures): one line naming what failed, no key, secret or token in it.
  const wrongId = 'AKIAPGBBWRONGKEY0001';
  const wrong = 'wrong-secret-Xk29aa';
  const bad = await runPgbb(['list', repo], { env: { ...withoutKeys(s3.env), AWS_ACCESS_KEY_ID: wrongId, AWS_SECRET_ACCESS_KEY: wrong, AWS_SESSION_TOKEN: TOKEN } });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^pgbb: error: could not list s3:\/\/\S+\/creds: .+\n$/);
  assertNoSecret('the failed list', bad.stderr + bad.stdout, [wrongId, wrong, TOKEN]);
});
