/**
 * zstd-compressed backups from a real PostgreSQL 15, through the library API
 * (ReplicationSource → TarFilesSink / StdoutSink with `compress`), judged by
 * the system zstd and tar, pg_verifybackup, and a restored server holding the
 * same data. The same through the CLI is in zstd-cli.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../support/run';
import { useSampleServer } from '../support/sample-server';
import { runPipeline, StdoutSink, TarFilesSink, UsageError, InterruptedError } from '../../src/index';
import { parseCompressSpec } from '../../src/codec/compression';

const pg = useSampleServer({ fingerprint: true });
const { scratch, verify, startAndCompare } = pg;

test('tar files with zstd:3: base.tar.zst, <oid>.tar.zst and a plain backup_manifest; zstd and tar read them; restored, it verifies and starts', async () => {
  const root = await scratch('pgbb-zstd-tar-');
  const target = join(root, 'tar');
  const sink = new TarFilesSink({ target, sync: false, compress: parseCompressSpec('zstd:3') });
  await runPipeline(pg.source(), [], sink);

  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst'].sort());
  const manifest = JSON.parse(await fs.readFile(join(target, 'backup_manifest'), 'utf8')) as { 'PostgreSQL-Backup-Manifest-Version': number };
  assert.equal(manifest['PostgreSQL-Backup-Manifest-Version'], 1, 'backup_manifest is plain JSON');
  await run('zstd', ['-tq', join(target, 'base.tar.zst'), join(target, `${pg.tsOid}.tar.zst`)]);
  const base = (await run('tar', ['--zstd', '-tf', join(target, 'base.tar.zst')])).stdout.split('\n');
  assert.ok(base.includes('backup_label'));
  assert.ok(base.includes('global/pg_control'));
  assert.match((await run('tar', ['--zstd', '-tf', join(target, `${pg.tsOid}.tar.zst`)])).stdout, /^PG_15_\d+\//m);
  // Compression did something: base.tar.zst is well under the data it holds.
  const { stdout: raw } = await run('bash', ['-c', `zstd -dc "${join(target, 'base.tar.zst')}" | wc -c`]);
  const packed = (await fs.stat(join(target, 'base.tar.zst'))).size;
  assert.ok(packed * 3 < Number(raw), `base.tar.zst is ${packed} bytes for ${raw.trim()} tar bytes`);

  // Restored the way a DBA restores -Ft: extract base and the tablespace, add the manifest.
  const data = join(root, 'data');
  const tsDir = join(root, 'ts');
  await fs.mkdir(data, { mode: 0o700 });
  await fs.mkdir(tsDir, { mode: 0o700 });
  await run('tar', ['--zstd', '-xf', join(target, 'base.tar.zst'), '-C', data]);
  await run('bash', ['-c', `zstd -dc "${join(target, `${pg.tsOid}.tar.zst`)}" | tar -xf - -C "${tsDir}"`]);
  await fs.rm(join(data, 'pg_tblspc', pg.tsOid));
  await fs.symlink(tsDir, join(data, 'pg_tblspc', pg.tsOid));
  await fs.copyFile(join(target, 'backup_manifest'), join(data, 'backup_manifest'));
  await verify(data);
  await startAndCompare(data);
});

test('stdout with zstd: one stream that `zstd -d | tar -t` lists, tablespace under pg_tblspc/<oid>/, backup_manifest last', async () => {
  const child = spawn('bash', ['-c', 'set -o pipefail; zstd -d | tar -tf -'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let listing = '';
  let errors = '';
  child.stdout.on('data', (d) => (listing += d));
  child.stderr.on('data', (d) => (errors += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const sink = new StdoutSink({ output: child.stdin, compress: { method: 'zstd', level: 1, workers: 2 } });
  await runPipeline(pg.source(), [], sink);
  assert.equal(await exited, 0, errors);
  const names = listing.split('\n').filter(Boolean);
  assert.equal(names[names.length - 1], 'backup_manifest');
  assert.ok(names.includes('global/pg_control'));
  assert.ok(names.some((n) => n.startsWith(`pg_tblspc/${pg.tsOid}/PG_15_`)));
});

test('stdout with zstd, extracted: pg_verifybackup accepts it', async () => {
  const root = await scratch('pgbb-zstd-stdout-');
  const file = join(root, 'backup.tar.zst');
  const { createWriteStream } = await import('node:fs');
  await runPipeline(pg.source(), [], new StdoutSink({ output: createWriteStream(file), compress: { method: 'zstd', level: 3 } }));
  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['--zstd', '-xf', file, '-C', data]);
  await verify(data);
});

test('an aborted compressed backup leaves nothing behind', async () => {
  const root = await scratch('pgbb-zstd-abort-');
  const target = join(root, 'tar');
  const ac = new AbortController();
  const src = pg.source({ signal: ac.signal });
  let bytes = 0;
  src.on('data', (ev: { type: string; chunk?: Buffer }) => {
    if (ev.type === 'data' && (bytes += ev.chunk!.length) > 2_000_000) ac.abort(new Error('test abort'));
  });
  src.pause();
  const sink = new TarFilesSink({ target, sync: false, compress: { method: 'zstd', level: 1, workers: 2 } });
  await assert.rejects(runPipeline(src, [], sink, ac.signal), (e: unknown) => e instanceof InterruptedError || (e as Error).name === 'AbortError');
  assert.ok(bytes > 2_000_000, 'the backup was under way');
  assert.ok(!existsSync(target), 'the target the sink created is removed');
});

test('a bad zstd level in the sink options fails before anything is created', async () => {
  const root = await scratch('pgbb-zstd-bad-');
  const target = join(root, 'tar');
  assert.throws(() => new TarFilesSink({ target, compress: { method: 'zstd', level: 42 } }), UsageError);
  assert.throws(() => new StdoutSink({ output: process.stderr, compress: { method: 'zstd', level: 0 } }), /zstd level 0 is out of range \(1\.\.19\)/);
  assert.ok(!existsSync(target));
});
