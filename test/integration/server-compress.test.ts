/**
 * `pgbb backup --compress server-zstd[:LEVEL]` against one real PostgreSQL 15:
 * the server zstd-compresses each archive (BASE_BACKUP COMPRESSION 'zstd'),
 * pgbb decompresses before its checks (transforms/server-archive-unpack.ts).
 *   plain  — pg_verifybackup accepts it, and pgbb read fewer bytes than without;
 *   tar    — base.tar.zst as client zstd writes it, pgbb verify accepts it;
 *   -D -   — one zstd stream that the zstd CLI and tar read;
 *   bad specs refused in one line; a corrupt page still fails the backup
 *   (last: it stops the server to flip a byte).
 * Bytes read are the pgbb process's own rchar (/proc/self/io, written at exit
 * by a preload module of this test, not of the CLI): the same run without
 * server compression reads the same files, so the difference is the network's.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cluster } from '../support/cluster';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { flipByte } from '../support/data-dir';

const BS = 8192;
let relPath: string;

// The sample data brings a tablespace: its archive is compressed by the server too.
const pg = useSampleServer({
  setup: async (c) => {
    // Compressible rows, enough that the network's share dwarfs what pgbb reads at start-up.
    await c.query(`CREATE TABLE victim AS SELECT g AS id, repeat(md5((g % 50)::text), 4) AS payload FROM generate_series(1, 100000) g`);
    await c.query('CHECKPOINT');
    [{ path: relPath }] = await c.query<{ path: string }>(`SELECT pg_relation_filepath('victim') AS path`);
  },
});

/** A preload that writes the process's /proc/self/io rchar to $PGBB_TEST_IO_OUT when it exits. */
async function ioProbe(dir: string): Promise<string> {
  const probe = join(dir, 'io-probe.js');
  await fs.writeFile(
    probe,
    `process.on('exit', () => { const io = require('fs').readFileSync('/proc/self/io', 'utf8'); require('fs').writeFileSync(process.env.PGBB_TEST_IO_OUT, /^rchar: (\\d+)$/m.exec(io)[1]); });\n`,
  );
  return probe;
}

async function backupReading(args: string[], probe: string, out: string): Promise<number> {
  const r = await runPgbb(['backup', ...pg.conn(), '-c', 'fast', ...args], { env: { NODE_OPTIONS: `--require ${probe}`, PGBB_TEST_IO_OUT: out } });
  assert.equal(r.code, 0, r.stderr);
  return Number(readFileSync(out, 'utf8'));
}

test('plain with server-zstd:1: pg_verifybackup accepts it, and pgbb read fewer bytes than the same backup without', async () => {
  const root = await pg.scratch('pgbb-szstd-plain-');
  const probe = await ioProbe(root);
  const ts = (dir: string) => ['-T', `${pg.tsLocation}=${join(root, `${dir}-ts`)}`];
  const compressed = await backupReading(['-D', join(root, 'z'), ...ts('z'), '--compress', 'server-zstd:1', '-X', 'fetch'], probe, join(root, 'io-z'));
  const plain = await backupReading(['-D', join(root, 'p'), ...ts('p'), '-X', 'fetch'], probe, join(root, 'io-p'));
  await pg.verify(join(root, 'z'));
  assert.deepEqual(readFileSync(join(root, 'z', relPath)).length, readFileSync(join(root, 'p', relPath)).length);
  // The table alone is ~14 MB that zstd shrinks many times over: at least 5 MB fewer read.
  assert.ok(compressed < plain - 5e6, `read ${compressed} bytes with server-zstd, ${plain} without`);
});

test('tar with server-zstd: base.tar.zst, <oid>.tar.zst and backup_manifest, which pgbb verify accepts; the JSON result names server-zstd', async () => {
  const root = await pg.scratch('pgbb-szstd-tar-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...pg.conn(), '-D', target, '-F', 'tar', '--compress', 'server-zstd:level=2', '-X', 'fetch', '-c', 'fast', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst'].sort());
  const result = r.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type?: string; event?: string; compression?: string })
    .find((e) => e.type === 'result' || e.event === 'result');
  assert.equal(result?.compression, 'server-zstd:level=2', r.stderr);
  const v = await runPgbb(['verify', target]);
  assert.equal(v.code, 0, v.stderr);
});

test('-D - with server-zstd: one zstd stream that zstd -d | tar -t lists', async () => {
  const root = await pg.scratch('pgbb-szstd-stdout-');
  const file = join(root, 'backup.tar.zst');
  const r = await runPgbb(['backup', ...pg.conn(), '-D', '-', '--compress', 'server-zstd', '-c', 'fast'], { stdoutTo: file });
  assert.equal(r.code, 0, r.stderr);
  const names = (await run('tar', ['--zstd', '-tf', file])).stdout.split('\n');
  assert.ok(names.includes('backup_label') && names.includes(relPath) && names.includes('backup_manifest'), names.slice(0, 10).join(' '));
  assert.ok(names.some((n) => n.startsWith(`pg_tblspc/${pg.tsOid}/PG_15_`)), 'the tablespace is in the stream');
});

test('bad server specs are refused in one line before connecting', async () => {
  for (const [spec, why] of [
    ['server-zstd:level=99', /zstd level "99" is out of range \(1\.\.19\)/],
    ['server-gzip', /server-side compression method "gzip" is not supported \(use server-zstd\)/],
    ['server-lz4:1', /server-side compression method "lz4" is not supported/],
  ] as const) {
    const target = join(await pg.scratch('pgbb-szstd-bad-'), 'x');
    const r = await runPgbb(['backup', ...pg.conn(), '-D', target, '--compress', spec]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^pgbb: error: invalid compression specification/);
    assert.match(lines[0], why);
    assert.ok(!existsSync(target));
  }
});

test('a corrupt page in a server-compressed backup is reported, file and block, and the target removed', async () => {
  await pg.cluster.stop();
  await flipByte(join(pg.cluster.dataDir, relPath), 3 * BS + BS / 2);
  const restarted = await Cluster.startExisting(pg.cluster.dataDir);
  pg.onCleanup(() => restarted.destroy());
  const target = join(await pg.scratch('pgbb-szstd-corrupt-'), 'data');
  const r = await runPgbb(['backup', ...pg.conn(restarted), '-D', target, '-T', `${pg.tsLocation}=${target}-ts`, '--compress', 'server-zstd:1', '-c', 'fast']);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`^pgbb: error: .*checksum verification failed in file "\\./${relPath}", block 3:`));
  assert.ok(!existsSync(target) && !existsSync(`${target}-ts`), 'a backup holding a corrupt page must not be left looking valid');
});
