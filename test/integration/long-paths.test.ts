/**
 * Paths longer than tar's 100-byte name and link fields, end to end against a
 * real PostgreSQL 15.
 *
 * PostgreSQL's own tar refuses member names and link targets over 99 bytes,
 * so long paths reach pgbb's writers in three ways, each tested here:
 *   - `-T` targets over 100 bytes: the tablespace link in a plain backup or
 *     a restored data directory points there, and a plain backup's link
 *     target becomes a tablespace location pgbb reads back and maps again;
 *   - pgbb's `-D -` stream puts tablespace members under `pg_tblspc/<oid>/`,
 *     so a 93-byte member of the tablespace's own tar becomes a 109-byte name;
 *   - a tablespace location over 99 bytes on the server: for a plain backup
 *     BASE_BACKUP itself refuses it ("symbolic link target too long for tar
 *     format"), as for pg_basebackup -Fp; pgbb reports that on one line and
 *     leaves nothing (-F tar takes it: ./long-tablespace.test.ts).
 * Every backup is checked by pg_verifybackup or `pgbb verify`, and each
 * restored copy starts with the same data.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPgbb } from '../support/pgbb';
import { chownToPostgres, deepDir as deepDirUnder } from '../support/run';
import { useSampleServer } from '../support/sample-server';

let root: string;
/** The long member, relative to the tablespace location (93 bytes, under the server's 99). */
let longMember: string;
const CONTENT = 'a file whose path needs more than a ustar name field\n';

const pg = useSampleServer({
  fingerprint: true,
  setup: async (c) => {
    root = await pg.scratch('pgbb-long-');
    const [ts] = await c.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
    const catalogDir = (await fs.readdir(ts.loc)).find((n) => n.startsWith('PG_'))!;
    const dir = `${catalogDir}/${'x'.repeat(60)}`;
    longMember = `${dir}/${'y'.repeat(92 - dir.length)}`;
    await fs.mkdir(join(ts.loc, dir));
    await fs.writeFile(join(ts.loc, longMember), CONTENT);
    await chownToPostgres(join(ts.loc, catalogDir));
  },
});
const { conn, verify, startAndCompare } = pg;

const deepDir = (name: string): Promise<string> => deepDirUnder(root, name);

async function assertRestored(data: string, ts: string): Promise<void> {
  assert.equal(await fs.readlink(join(data, 'pg_tblspc', pg.tsOid)), ts);
  assert.equal(await fs.readFile(join(ts, longMember), 'utf8'), CONTENT);
  await verify(data);
  await startAndCompare(data);
}

test('plain backup to a > 100-byte -T target, then restore from it to another: both verify, the copy starts', async () => {
  const backup = join(root, 'plain');
  const t1 = await deepDir('plain-ts');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-c', 'fast', '-N', '-T', `${pg.tsLocation}=${t1}`]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await fs.readlink(join(backup, 'pg_tblspc', pg.tsOid)), t1);
  await verify(backup);
  const v = await runPgbb(['verify', backup]);
  assert.equal(v.code, 0, v.stderr);
  // The plain backup's long link target is now the tablespace location to map.
  const t2 = await deepDir('plain-r-ts');
  const data = join(root, 'plain-r');
  const r = await runPgbb(['restore', backup, '-D', data, '-T', `${t1}=${t2}`]);
  assert.equal(r.code, 0, r.stderr);
  await assertRestored(data, t2);
});

test('tar files: restore to a > 100-byte -T target starts with the same data', async () => {
  const backup = join(root, 'tar');
  const b = await runPgbb(['backup', ...conn(), '-D', backup, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(b.code, 0, b.stderr);
  const ts = await deepDir('tar-ts');
  const data = join(root, 'tar-r');
  const r = await runPgbb(['restore', backup, '-D', data, '-T', `${pg.tsLocation}=${ts}`]);
  assert.equal(r.code, 0, r.stderr);
  await assertRestored(data, ts);
});

test('-D - stream: a tablespace member over 100 bytes under pg_tblspc/<oid>/ reads back in GNU tar and in pgbb; restore - to a deep target starts', async () => {
  const file = join(root, 'stream.tar');
  const b = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast'], { stdoutFile: file });
  assert.equal(b.code, 0, b.stderr);
  const name = `pg_tblspc/${pg.tsOid}/${longMember}`;
  assert.ok(Buffer.byteLength(name) > 100, name);
  const listed = execFileSync('tar', ['-tf', file], { maxBuffer: 1 << 26 }).toString().split('\n');
  assert.ok(listed.includes(name), `GNU tar lists ${name}`);
  const bytes = await fs.readFile(file);
  const v = await runPgbb(['verify', '-'], { input: bytes });
  assert.equal(v.code, 0, v.stderr);
  const ts = await deepDir('stream-ts');
  const data = join(root, 'stream-r');
  const r = await runPgbb(['restore', '-', '-D', data, '-T', `${pg.tsLocation}=${ts}`], { input: bytes });
  assert.equal(r.code, 0, r.stderr);
  await assertRestored(data, ts);
});

test('a tablespace location over 99 bytes on the server: a plain backup is refused by BASE_BACKUP, as pg_basebackup -Fp is; pgbb says so on one line and leaves nothing', async () => {
  const location = await deepDir('server-ts');
  await pg.cluster.query(`CREATE TABLESPACE pgbb_long_ts LOCATION '${location}'`);
  try {
    const target = join(root, 'refused-plain');
    // Plain writes tablespaces where they are unless mapped: map both away from the server's own.
    const maps = ['-T', `${pg.tsLocation}=${target}-ts1`, '-T', `${location}=${target}-ts2`];
    const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'plain', '-c', 'fast', '-N', ...maps]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^pgbb: error: symbolic link target too long for tar format: file name "pg_tblspc\/\d+", target "\/.*server-ts"\n$/);
    for (const dir of [target, `${target}-ts1`, `${target}-ts2`]) assert.ok(!existsSync(dir), `${dir} removed`);
  } finally {
    await pg.cluster.query('DROP TABLESPACE pgbb_long_ts');
  }
});
