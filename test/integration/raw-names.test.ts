/**
 * File names that are not UTF-8, end to end against a real PostgreSQL 15.
 *
 * An admin's stray file in the data directory (bytes ff fe 'x') and one in a
 * tablespace's catalog directory (bytes 80 'y', one all-zero page: see the
 * last test for why): PostgreSQL ignores them, its tar carries their raw
 * bytes and its manifest lists them as Encoded-Path.
 * Backed up plain, as tar files and as a `-D -` stream, verified, restored:
 * each time the files exist under exactly their byte names with their
 * contents, pg_verifybackup accepts the result, and a restored copy starts
 * with the same data.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPgbb } from '../support/pgbb';
import { chownToPostgres } from '../support/run';
import { useSampleServer } from '../support/sample-server';

const ROOT_NAME = Buffer.from([0xff, 0xfe, 0x78]);
const TS_NAME = Buffer.from([0x80, 0x79]);
/** A new (all-zero) page: the server's checksum check skips it without a WARNING. */
const TS_CONTENT = Buffer.alloc(8192);
let root: string;
/** The tablespace's catalog version directory, e.g. PG_15_202209061. */
let catalogDir: string;

const at = (dir: string, name: Buffer) => Buffer.concat([Buffer.from(`${dir}/`), name]);

const pg = useSampleServer({
  fingerprint: true,
  setup: async (c) => {
    root = await pg.scratch('pgbb-raw-');
    const [ts] = await c.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
    catalogDir = (await fs.readdir(ts.loc)).find((n) => n.startsWith('PG_'))!;
    await fs.writeFile(at(c.dataDir, ROOT_NAME), 'stray file in the data directory\n');
    await fs.writeFile(at(join(ts.loc, catalogDir), TS_NAME), TS_CONTENT);
    // chown takes the names as argv strings: hand over the directories holding them.
    await chownToPostgres(c.dataDir);
    await chownToPostgres(join(ts.loc, catalogDir));
  },
});
const { conn, verify, startAndCompare } = pg;

/** Both stray files are in `data` (and its tablespace at `ts`) under their exact byte names. */
async function assertRawFiles(data: string, ts: string): Promise<void> {
  const names = await fs.readdir(data, { encoding: 'buffer' });
  assert.ok(names.some((n) => n.equals(ROOT_NAME)), `${data} holds the file named ff fe 78`);
  assert.equal(await fs.readFile(at(data, ROOT_NAME), 'utf8'), 'stray file in the data directory\n');
  assert.ok(!names.some((n) => n.toString('utf8') === ROOT_NAME.toString('utf8') && !n.equals(ROOT_NAME)), 'no lossy (U+FFFD) copy');
  const tsNames = await fs.readdir(join(ts, catalogDir), { encoding: 'buffer' });
  assert.ok(tsNames.some((n) => n.equals(TS_NAME)), 'the tablespace holds the file named 80 79');
  assert.ok((await fs.readFile(at(join(ts, catalogDir), TS_NAME))).equals(TS_CONTENT));
}

async function restore(source: string, name: string, input?: Buffer): Promise<{ data: string; ts: string }> {
  const data = join(root, `${name}-data`);
  const ts = join(root, `${name}-ts`);
  // A plain backup's tablespace is where its -T put it.
  const from = source === join(root, 'plain') ? join(root, 'plain-ts') : pg.tsLocation;
  const r = await runPgbb(['restore', source, '-D', data, '-T', `${from}=${ts}`], { input });
  assert.equal(r.code, 0, r.stderr);
  await assertRawFiles(data, ts);
  await verify(data);
  return { data, ts };
}

test('plain: the server manifest lists them as Encoded-Path; pg_verifybackup and pgbb verify accept the backup; restore keeps the bytes', async () => {
  const backup = join(root, 'plain');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-c', 'fast', '-N', '-T', `${pg.tsLocation}=${join(root, 'plain-ts')}`]);
  assert.equal(b.code, 0, b.stderr);
  await assertRawFiles(backup, join(root, 'plain-ts'));
  const manifest = await fs.readFile(join(backup, 'backup_manifest'), 'utf8');
  assert.ok(manifest.includes(`{ "Encoded-Path": "${ROOT_NAME.toString('hex')}", `), 'the data directory file');
  assert.ok(manifest.includes(`{ "Encoded-Path": "${Buffer.from(`pg_tblspc/${pg.tsOid}/${catalogDir}/`).toString('hex')}${TS_NAME.toString('hex')}", `), 'the tablespace file');
  await verify(backup);
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  await restore(backup, 'plain-r');
});

test('tar files: verify passes; restore keeps the bytes and the copy starts with the same data', async () => {
  const backup = join(root, 'tar');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  const { data } = await restore(backup, 'tar-r');
  await startAndCompare(data);
});

test('-D - stream, plain and zstd: verify - passes; restore - keeps the bytes', async () => {
  for (const [name, extra] of [['stream', []], ['streamz', ['--compress', 'zstd:1']]] as const) {
    const file = join(root, `${name}.tar`);
    const b = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast', ...extra], { stdoutFile: file });
    assert.equal(b.code, 0, b.stderr);
    const bytes = await fs.readFile(file);
    const v = await runPgbb(['verify', '-'], { input: bytes });
    assert.equal(v.code, 0, v.stderr);
    await restore('-', `${name}-r`, bytes);
  }
});

// Regression: pg-protocol asks for client_encoding UTF8, and the walsender then failed converting
// the WARNING that names this file; pgbb now sends libpq's startup packet (src/codec/protocol/startup.ts).
test('a non-UTF-8 name the server warns about (a short file in a tablespace, checked for page checksums)', async () => {
  const [ts] = await pg.cluster.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  const name = at(join(ts.loc, catalogDir), Buffer.from([0x81, 0x7a]));
  await fs.writeFile(name, 'one byte short of nothing\n');
  try {
    const b = await runPgbb(['backup', ...conn(), '-D', join(root, 'warned'), '-F', 'tar', '-c', 'fast', '-N']);
    assert.equal(b.code, 0, b.stderr);
  } finally {
    await fs.rm(name, { force: true });
  }
});
