/**
 * `pgbb backup --compress zstd…` from the command line, against a real
 * PostgreSQL 15: the files and streams a DBA would get, read by the system
 * zstd and tar, and accepted by pg_verifybackup. Exercises the CLI wiring of
 * src/codec/compression.ts (parseCompressSpec) into the tar-files and stdout sinks;
 * the library-level tests are in zstd.test.ts.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../support/run';
import { PGBB_CLI, runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';

const pg = useSampleServer();
const { conn, scratch, verify } = pg;

/** Extracts base.tar.zst and the tablespace archive the way a DBA restores -Ft and adds the manifest, ready for pg_verifybackup. */
async function restoreAndVerify(root: string, target: string): Promise<string> {
  const data = join(root, 'data');
  const tsDir = join(root, 'ts');
  await fs.mkdir(data, { mode: 0o700 });
  await fs.mkdir(tsDir, { mode: 0o700 });
  await run('tar', ['--zstd', '-xf', join(target, 'base.tar.zst'), '-C', data]);
  await run('tar', ['--zstd', '-xf', join(target, `${pg.tsOid}.tar.zst`), '-C', tsDir]);
  await fs.rm(join(data, 'pg_tblspc', pg.tsOid));
  await fs.symlink(tsDir, join(data, 'pg_tblspc', pg.tsOid));
  await fs.copyFile(join(target, 'backup_manifest'), join(data, 'backup_manifest'));
  return data;
}

test('CLI --compress: pgbb backup -F tar --compress zstd:3 -X fetch writes base.tar.zst, <oid>.tar.zst and backup_manifest that verify', async () => {
  const root = await scratch('pgbb-zcli-tar-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '--compress', 'zstd:3', '-X', 'fetch', '-c', 'fast']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst'].sort());
  const base = (await run('tar', ['--zstd', '-tf', join(target, 'base.tar.zst')])).stdout.split('\n');
  assert.ok(base.includes('backup_label'));
  assert.ok(base.some((n) => /^pg_wal\/[0-9A-F]{24}$/.test(n)), '-X fetch: WAL inside base.tar.zst');
  const data = await restoreAndVerify(root, target);
  await verify(data);
});

test('CLI --compress: -X stream with client-zstd:level=1,workers=2 also compresses pg_wal.tar.zst', async () => {
  const root = await scratch('pgbb-zcli-stream-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '--compress', 'client-zstd:level=1,workers=2', '-X', 'stream', '-c', 'fast']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst', 'pg_wal.tar.zst'].sort());
  const wal = (await run('tar', ['--zstd', '-tf', join(target, 'pg_wal.tar.zst')])).stdout;
  assert.match(wal, /^[0-9A-F]{24}$/m);
  const data = await restoreAndVerify(root, target);
  await run('tar', ['--zstd', '-xf', join(target, 'pg_wal.tar.zst'), '-C', join(data, 'pg_wal')]);
  await verify(data);
});

test('CLI --compress: pgbb backup -D - --compress zstd | zstd -d | tar -t lists the whole backup', async () => {
  const cmd = [process.execPath, PGBB_CLI, 'backup', ...conn(), '-D', '-', '--compress', 'zstd', '-c', 'fast']
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const { stdout } = await run('bash', ['-c', `set -o pipefail; ${cmd} | zstd -d | tar -tf -`]);
  const names = stdout.split('\n').filter(Boolean);
  assert.equal(names[names.length - 1], 'backup_manifest');
  assert.ok(names.includes('global/pg_control'));
  assert.ok(names.some((n) => n.startsWith(`pg_tblspc/${pg.tsOid}/PG_15_`)));
});

test('CLI --compress: bad specifications are one-line usage errors with exit 1, before the server is contacted', async () => {
  // Port 1 has no server: the error must be about the option.
  const noServer = ['-d', 'host=127.0.0.1 port=1 user=postgres'];
  const cases: Array<[string[], RegExp]> = [
    [['-F', 'tar', '--compress', 'zstd:25'], /^pgbb: error: .*zstd level "25" is out of range \(1\.\.19\)/],
    [['-F', 'tar', '--compress', 'gzip'], /^pgbb: error: .*compression method "gzip" is not supported/],
    [['-F', 'tar', '--compress', 'zstd:level=1,long'], /^pgbb: error: .*unknown keyword "long"/],
    [['-F', 'plain', '--compress', 'zstd'], /^pgbb: error: --compress is only allowed with tar format or -D -$/m],
  ];
  for (const [args, re] of cases) {
    const root = await scratch('pgbb-zcli-bad-');
    const r = await runPgbb(['backup', ...noServer, '-D', join(root, 't'), ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
  }
});
