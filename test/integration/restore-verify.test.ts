/**
 * Restore and verify from every format pgbb writes, against a real
 * PostgreSQL 15: backup → verify → restore (tablespace remapped) → the copy
 * starts and returns the same data. Then damaged and hostile backups: each
 * fails with one line naming what is wrong, and nothing is written outside
 * the target (which is removed).
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pack } from 'tar-stream';
import { dataFingerprint } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { descriptorFromStart, encodeDescriptor } from '../../src/codec/backup-descriptor';

let root: string;
const pg = useSampleServer({
  fingerprint: true,
  setup: async () => {
    root = await pg.scratch('pgbb-rv-');
  },
});
const { conn, verify, startAndCompare, withStarted } = pg;

async function restoreAndCompare(source: string, name: string, opts: { stdin?: Buffer; extra?: string[] } = {}): Promise<string> {
  const data = join(root, `${name}-data`);
  const ts = join(root, `${name}-ts`);
  const r = await runPgbb(['restore', source, '-D', data, '-T', `${pg.tsLocation}=${ts}`, '-v', ...(opts.extra ?? [])], { input: opts.stdin });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^pgbb: restored \d+ files/);
  assert.equal(await fs.readlink(join(data, 'pg_tblspc', pg.tsOid)), ts);
  assert.equal((await fs.stat(data)).mode & 0o777, 0o700);
  await verify(data);
  await startAndCompare(data);
  return data;
}

test('plain: verify passes; restore -T starts with the same data', async () => {
  const backup = join(root, 'plain');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-c', 'fast', '-N', '-T', `${pg.tsLocation}=${join(root, 'plain-ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^backup successfully verified: \d+ files, \d+ bytes as the manifest lists them \(WAL is checked apart\), \d+ pages, WAL \S+–\S+ \(\d+ segments, \d+ records\)\n$/);
  // The plain backup's own tablespace sits at plain-ts: that is the OLD side of -T now.
  const data = join(root, 'plain-r-data');
  const r = await runPgbb(['restore', backup, '-D', data, '-T', `${join(root, 'plain-ts')}=${join(root, 'plain-r-ts')}`]);
  assert.equal(r.code, 0, r.stderr);
  await startAndCompare(data);
});

test('tar, zstd-compressed: verify and restore', async () => {
  const backup = join(root, 'tarz');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-F', 'tar', '--compress', 'zstd:1', '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual((await fs.readdir(backup)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst', 'pg_wal.tar.zst'].sort());
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  await restoreAndCompare(backup, 'tarz');
});

test('stdout stream (-D -), plain and zstd: verify - and restore - from stdin', async () => {
  for (const [name, extra] of [['stream', []], ['streamz', ['--compress', 'zstd']]] as const) {
    const file = join(root, `${name}.tar`);
    const b = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast', ...extra], { stdoutFile: file });
    assert.equal(b.code, 0, b.stderr);
    const bytes = await fs.readFile(file);
    const v = await runPgbb(['verify', '-'], { input: bytes });
    assert.equal(v.code, 0, v.stderr);
    await restoreAndCompare('-', name, { stdin: bytes });
  }
});

test('restore -R writes standby.signal and primary_conninfo like pg_basebackup', async () => {
  const backup = join(root, 'tar-r');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  const data = join(root, 'r-data');
  const conninfo = `host=127.0.0.1 port=${pg.cluster.port} user=postgres application_name=it's`;
  const r = await runPgbb(['restore', backup, '-D', data, '-T', `${pg.tsLocation}=${join(root, 'r-ts')}`, '-R', '--primary-conninfo', conninfo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await fs.readFile(join(data, 'standby.signal'))).length, 0);
  const auto = await fs.readFile(join(data, 'postgresql.auto.conf'), 'utf8');
  assert.ok(auto.endsWith(`primary_conninfo = 'host=127.0.0.1 port=${pg.cluster.port} user=postgres application_name=it''s'\n`), auto);
  await withStarted(data, async (standby) => {
    const [row] = await standby.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(row.r, true, 'the restored copy runs as a standby');
    assert.equal(await dataFingerprint(standby), pg.fingerprint);
  });
});

test('verify names a corrupted file and block; restore of it fails and leaves nothing', async () => {
  const backup = join(root, 'plain-bad');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-c', 'fast', '-N', '-T', `${pg.tsLocation}=${join(root, 'plain-bad-ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  const [{ path: rel }] = await pg.cluster.query<{ path: string }>(`SELECT pg_relation_filepath('pgbench_accounts') AS path`);
  const file = join(backup, rel);
  const fh = await fs.open(file, 'r+');
  await fh.write(Buffer.from([0xa5]), 0, 1, 8192 * 2 + 4000);
  await fh.close();
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 1);
  const lines = v.stderr.trimEnd().split('\n');
  assert.match(lines[lines.length - 1], /^pgbb: error: backup ".*" failed verification \(2 problems\)$/);
  assert.ok(lines.some((l) => l.includes(`"${rel}" has CRC32C`)), v.stderr);
  assert.ok(lines.some((l) => new RegExp(`checksum verification failed in file "\\./${rel}", block 2:`).test(l)), v.stderr);
  const target = join(root, 'bad-restore');
  const r = await runPgbb(['restore', backup, '-D', target, '-T', `${join(root, 'plain-bad-ts')}=${join(root, 'bad-restore-ts')}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^pgbb: error: .*"${rel}" has CRC32C .*\\n$`));
  assert.ok(!existsSync(target) && !existsSync(join(root, 'bad-restore-ts')), 'nothing left behind');
});

test('a truncated stream, a truncated zstd frame and a manifest with a bad checksum each fail naming what is wrong', async () => {
  const file = join(root, 'stream.tar'); // from the stdout test
  const whole = await fs.readFile(file);
  const t = await runPgbb(['restore', '-', '-D', join(root, 'trunc'), '-T', `${pg.tsLocation}=${join(root, 'trunc-ts')}`], {
    input: whole.subarray(0, Math.floor(whole.length / 2)),
  });
  assert.equal(t.code, 1);
  assert.match(t.stderr, /^pgbb: error: truncated tar archive "standard input": member ".*" has \d+ of \d+ bytes\n$/);
  assert.ok(!existsSync(join(root, 'trunc')) && !existsSync(join(root, 'trunc-ts')));

  const z = await fs.readFile(join(root, 'streamz.tar'));
  const tz = await runPgbb(['verify', '-'], { input: z.subarray(0, z.length - 100) });
  assert.equal(tz.code, 1);
  assert.match(tz.stderr, /truncated: it ends inside a zstd frame/);

  const tarz = join(root, 'tarz');
  const copy = join(root, 'tarz-badmanifest');
  await fs.cp(tarz, copy, { recursive: true });
  const m = await fs.readFile(join(copy, 'backup_manifest'), 'utf8');
  await fs.writeFile(join(copy, 'backup_manifest'), m.replace('"Size": ', '"Size":  '));
  const bm = await runPgbb(['verify', copy]);
  assert.equal(bm.code, 1);
  assert.match(bm.stderr, /pgbb: manifest: backup_manifest: manifest checksum mismatch/);
});

/** A one-archive tar stream with pgbb's descriptor and the given hostile members. */
async function hostileStream(members: { name: string; type: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Promise<Buffer> {
  const descriptor = encodeDescriptor(
    descriptorFromStart({
      type: 'start', serverVersion: 150000, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028', tablespaces: [],
      walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes: null,
    }),
  );
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  p.entry({ name: 'PG_VERSION', pax: { comment: descriptor } }, '15\n');
  for (const m of members) {
    if (m.type === 'file') p.entry({ name: m.name, type: 'file' }, m.body ?? '');
    else p.entry({ name: m.name, type: m.type, linkname: m.linkname }, () => {});
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('hostile members: absolute paths, .. and symlinks out of the target are refused; nothing is written outside', async () => {
  const outside = join(root, 'outside');
  await fs.mkdir(outside);
  const cases: [string, Parameters<typeof hostileStream>[0], RegExp][] = [
    ['dotdot', [{ name: '../outside/evil', type: 'file', body: 'x' }], /archive member "\.\.\/outside\/evil" has an unsafe path/],
    ['absolute', [{ name: `${outside}/evil`, type: 'file', body: 'x' }], /has an unsafe path/],
    [
      'symlink',
      [
        { name: 'global', type: 'symlink', linkname: outside },
        { name: 'global/evil', type: 'file', body: 'x' },
      ],
      /archive member "global" is a symbolic link/,
    ],
  ];
  for (const [name, members, expected] of cases) {
    const target = join(root, `hostile-${name}`);
    const r = await runPgbb(['restore', '-', '-D', target], { input: await hostileStream(members) });
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, expected, name);
    assert.equal(r.stderr.split('\n').length, 2, `${name}: one line`);
    assert.ok(!existsSync(target), `${name}: target removed`);
  }
  assert.deepEqual(await fs.readdir(outside), [], 'nothing written outside the target');
});
