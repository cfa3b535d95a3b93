/**
 * Encrypted backups end to end (age, transforms/encrypt.ts) against a real
 * PostgreSQL 15 and s3rver: tar files to age X25519 recipients, read back
 * by Debian's `age` too, `-D -` with a 0600 passphrase file, and S3 with
 * PGBB_ENCRYPT_PASSPHRASE; restore and verify decrypt them. A wrong key, a
 * truncated file and one tampered byte each fail in one line naming the
 * file or object, and leave no restore target behind. The passphrase is
 * never in output, files, objects or the record.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { run } from '../support/run';
import { runPgbb, type PgbbRun } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { startS3Server } from '../support/s3-server';
import { ageKeyFiles } from '../support/age-key-files';

const pg = useSampleServer({ fingerprint: true });
const PASS = 'pgbb-test-passphrase-7f3a9c';
const MAGIC = Buffer.from('age-encryption.org/v1\n');

function assertNoSecret(what: string, bytes: Buffer | string): void {
  assert.ok(!Buffer.from(bytes).includes(PASS), `the passphrase is in ${what}`);
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false);
}

/** A restore that must fail with one error line matching `re`, leaving no target. */
async function refusedRestore(args: string[], re: RegExp, env?: NodeJS.ProcessEnv): Promise<PgbbRun> {
  const root = await pg.scratch('pgbb-enc-bad-');
  const target = join(root, 'data');
  const r = await runPgbb(['restore', ...args, '-D', target, '-N', '-T', `${pg.tsLocation}=${target}-ts`], { env });
  assert.notEqual(r.code, 0, `restore ${args.join(' ')} succeeded`);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.ok(!(await exists(target)) && !(await exists(`${target}-ts`)), 'nothing restored');
  assertNoSecret('stderr', r.stderr);
  return r;
}

test('tar files to age recipients: `age -d -i` reads them, verify and restore decrypt with the identity file; keyless, wrong-key, tampered and cut restores leave nothing', async () => {
  const root = await pg.scratch('pgbb-enc-tar-');
  const { identity, recipients, keyFile, otherKey } = await ageKeyFiles(root);
  const target = join(root, 'tar');
  const b = await runPgbb(['backup', ...pg.conn(), '-D', target, '-F', 'tar', '-Z', 'zstd', '-c', 'fast', '--encrypt-recipients-file', recipients]);
  assert.equal(b.code, 0, b.stderr);
  const names = (await fs.readdir(target)).sort();
  assert.deepEqual(names, [`${pg.tsOid}.tar.zst.age`, 'backup_manifest.age', 'base.tar.zst.age', 'pg_wal.tar.zst.age'].sort());
  for (const n of names) assert.ok((await fs.readFile(join(target, n))).subarray(0, MAGIC.length).equals(MAGIC), `${n} is an age file`);
  const plainBase = join(root, 'base.tar');
  await run('bash', ['-c', `set -o pipefail; age -d -i '${keyFile}' '${join(target, 'base.tar.zst.age')}' | zstd -d > '${plainBase}'`]);
  const { stdout } = await run('tar', ['-tf', plainBase]);
  assert.ok(stdout.split('\n').includes('backup_label'), 'age -d | zstd -d | tar -t lists base.tar');
  // The identity is the secret here: not in the output, the files, nor the archive's descriptor.
  for (const [what, bytes] of [['output', b.stdout + b.stderr], ['base.tar', await fs.readFile(plainBase)], ...await Promise.all(names.map(async (n) => [n, await fs.readFile(join(target, n))] as const))] as const) {
    assert.ok(!Buffer.from(bytes).includes(identity), `the identity is in ${what}`);
  }

  const v = await runPgbb(['verify', target, '--encrypt-identity-file', keyFile]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);
  const data = join(root, 'data');
  const r = await runPgbb(['restore', target, '-D', data, '-N', '-T', `${pg.tsLocation}=${data}-ts`, '--encrypt-identity-file', keyFile]);
  assert.equal(r.code, 0, r.stderr);
  await pg.startAndCompare(data);

  await refusedRestore([target], /^pgbb: error: .*base\.tar\.zst\.age is encrypted: give its key/);
  // The manifest is decrypted first (each file is then checked against it before it is written).
  await refusedRestore([target, '--encrypt-identity-file', otherKey], /^pgbb: error: .*backup_manifest\.age: wrong key/);
  // Copies of base (read first): one byte flipped inside its payload, and cut short.
  const base = await fs.readFile(join(target, 'base.tar.zst.age'));
  const damaged = async (name: string, bytes: Buffer) => {
    const dir = join(root, name);
    await fs.cp(target, dir, { recursive: true });
    await fs.writeFile(join(dir, 'base.tar.zst.age'), bytes);
    return dir;
  };
  const flipped = Buffer.from(base);
  flipped[Math.floor(base.length / 2)] ^= 0x40;
  await refusedRestore([await damaged('flipped', flipped), '--encrypt-identity-file', keyFile], /^pgbb: error: .*base\.tar\.zst\.age: damaged or tampered with/);
  await refusedRestore([await damaged('cut', base.subarray(0, base.length - 1000)), '--encrypt-identity-file', keyFile], /^pgbb: error: .*base\.tar\.zst\.age: is truncated or tampered with/);
});

test('bad key options are one-line usage errors before the server is contacted', async () => {
  const root = await pg.scratch('pgbb-enc-opts-');
  const loose = join(root, 'loose');
  await fs.writeFile(loose, `${PASS}\n`, { mode: 0o644 });
  await fs.chmod(loose, 0o644);
  const huge = join(root, 'huge');
  await fs.writeFile(huge, `${PASS}\n${'#'.repeat(70 * 1024)}\n`, { mode: 0o600 });
  const noServer = ['-d', 'host=127.0.0.1 port=1 user=postgres'];
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['backup', ...noServer, '-D', join(root, 't1'), '-F', 'tar', '--encrypt-passphrase-file', loose], {}, /^pgbb: error: passphrase file ".*loose" has mode 0644: it must not be readable by group or others \(chmod 0600\)$/],
    [['backup', ...noServer, '-D', join(root, 't2'), '--encrypt-passphrase-file', join(root, 'missing')], {}, /^pgbb: error: could not open passphrase file .*: no such file or directory$/],
    [['backup', ...noServer, '-D', join(root, 't3'), '-F', 'plain'], { PGBB_ENCRYPT_PASSPHRASE: PASS }, /^pgbb: error: encryption .* not a plain backup$/],
    [['restore', join(root, 'none'), '-D', join(root, 't4'), '--encrypt-identity-file', loose], {}, /^pgbb: error: identity file ".*loose" has mode 0644/],
    [['backup', ...noServer, '-D', join(root, 't1'), '-F', 'tar', '--encrypt-passphrase-file', huge], {}, /^pgbb: error: passphrase file ".*huge" is larger than 65536 bytes/],
  ];
  for (const [args, env, re] of cases) {
    const r = await runPgbb(args, { env });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), re);
    assertNoSecret('stderr', r.stderr);
    assert.ok(!(await exists(join(root, 't1'))) && !(await exists(join(root, 't3'))));
  }
});

test('-D - with a 0600 passphrase file: pgbb verify - decrypts the stream; a cut stream fails naming standard input', async () => {
  const root = await pg.scratch('pgbb-enc-stdout-');
  const passFile = join(root, 'pass');
  await fs.writeFile(passFile, `${PASS}\n`, { mode: 0o600 });
  const out = join(root, 'backup.tar.zst.age');
  const b = await runPgbb(['backup', ...pg.conn(), '-D', '-', '-Z', 'zstd', '-c', 'fast', '--encrypt-passphrase-file', passFile, '--json'], { stdoutFile: out });
  assert.equal(b.code, 0, b.stderr);
  assertNoSecret('backup output', b.stderr);
  const sealed = await fs.readFile(out);
  assert.ok(sealed.subarray(0, MAGIC.length).equals(MAGIC), 'an age stream');
  assertNoSecret('the stream', sealed);

  const v = await runPgbb(['verify', '-', '--encrypt-passphrase-file', passFile], { input: sealed });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);
  const t = await runPgbb(['verify', '-', '--encrypt-passphrase-file', passFile], { input: sealed.subarray(0, sealed.length - 100) });
  assert.notEqual(t.code, 0);
  assert.match(t.stderr, /^pgbb: error: standard input: is truncated or tampered with/m);
  assertNoSecret('stderr', t.stderr);
});

test('S3 with PGBB_ENCRYPT_PASSPHRASE: objects are age files, the record says "age", verify decrypts; a wrong or missing key restores nothing', async () => {
  const s3 = await startS3Server();
  pg.onCleanup(() => s3.stop());
  const env = { ...s3.env, PGBB_ENCRYPT_PASSPHRASE: PASS };
  const repo = `s3://${s3.bucket}/enc`;
  const b = await runPgbb(['backup', ...pg.conn(), '-D', repo, '-c', 'fast', '--json'], { env });
  assert.equal(b.code, 0, b.stderr);
  assertNoSecret('backup output', b.stdout + b.stderr);
  const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'enc/' }));
  const keys = (listed.Contents ?? []).map((o) => o.Key!);
  assert.ok(keys.length >= 4, keys.join(' '));
  for (const key of keys) {
    const r = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const bytes = Buffer.from(await r.Body!.transformToByteArray());
    assertNoSecret(key, bytes);
    if (key.endsWith('/backup.json')) assert.equal(JSON.parse(bytes.toString()).transform, 'age');
    else assert.ok(bytes.subarray(0, MAGIC.length).equals(MAGIC), `${key} is an age file`);
  }

  await refusedRestore([repo], /^pgbb: error: .* was written through "age": give the matching key/, s3.env);
  await refusedRestore([repo], /^pgbb: error: s3:\/\/.*\/base\.tar\.zst: wrong key/, { ...s3.env, PGBB_ENCRYPT_PASSPHRASE: 'wrong' });
  // The same reading and decrypting as restore (restore's own run is the tar test's), every object and the WAL checked.
  const v = await runPgbb(['verify', repo], { env });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backup successfully verified/);
});
