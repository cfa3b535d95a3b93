/**
 * The test harness itself against real servers: a Debian 15 cluster with
 * sample data, restored with pg_basebackup and started again; and the
 * embedded PostgreSQL 17 binaries. If these fail, every other integration
 * test fails for reasons that are not pgbb's.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, dataFingerprint, embeddedBinDir, fillSampleData, makeTempDir, serverBinDir } from '../support/cluster';
import { isAlive } from '../support/reaper';
import { run } from '../support/run';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('a Debian 15 cluster holds sample data, survives pg_basebackup + startExisting, and stops for good', async () => {
  const c = await Cluster.create();
  cleanup.push(() => c.destroy());
  assert.equal(c.binDir, DEBIAN_PG15_BIN);
  assert.match(c.connectionString(), /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
  assert.equal(await c.psql('SHOW data_checksums'), 'on');
  assert.equal(await c.psql('SHOW wal_level'), 'replica');

  await fillSampleData(c);
  const fp = await dataFingerprint(c);
  assert.equal(await dataFingerprint(c), fp, 'fingerprint is deterministic');
  assert.match(fp, /^accounts=100000$/m);
  assert.match(fp, /^tablespaces=pgbb_ts$/m);
  assert.match(fp, /^pgbb_ts_rows\.rows=20000$/m);
  assert.match(fp, /^pgbb_ts_rows\.tablespace=pgbb_ts$/m);
  assert.match(fp, /^large_objects=1$/m);

  // A restored backup: backup_label, a tablespace symlink to remap, a
  // postgresql.conf naming the original's socket dir. startExisting copes.
  const target = await makeTempDir('pgbb-restore-');
  cleanup.push(() => rm(target, { recursive: true, force: true }));
  const [tsLocation] = await c.query<{ loc: string }>(
    `SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'pgbb_ts'`,
  );
  await run(
    join(DEBIAN_PG15_BIN, 'pg_basebackup'),
    ['-d', c.connectionString(), '-D', join(target, 'data'), '-Fp', '-Xstream', '-cfast', '--no-sync',
      '-T', `${tsLocation.loc}=${join(target, 'ts')}`],
    { asPostgres: true },
  );
  const restored = await Cluster.startExisting(join(target, 'data'));
  cleanup.push(() => restored.destroy());
  assert.notEqual(restored.port, c.port);
  assert.equal(await dataFingerprint(restored), fp);
  await restored.destroy();
  assert.ok(existsSync(join(target, 'data', 'PG_VERSION')), 'destroy() leaves a data dir it did not create');

  const pid = c.pid;
  assert.ok(pid !== undefined && isAlive(pid));
  await c.stop();
  assert.equal(isAlive(pid), false, 'postmaster is gone after stop()');
  assert.equal(c.pid, undefined);
  await c.stop(); // idempotent
  await c.destroy();
  assert.equal(existsSync(c.baseDir), false);
});

test('the embedded PostgreSQL 17 binaries start, answer and stop', async () => {
  const c = await Cluster.create({ binDir: embeddedBinDir(), conf: { fsync: false } });
  cleanup.push(() => c.destroy());
  const [row] = await c.query<{ v: string }>('SELECT current_setting($$server_version_num$$) AS v');
  assert.ok(Number(row.v) >= 170000, `server_version_num ${row.v}`);
  assert.equal(await c.psql('SHOW fsync'), 'off', 'psql falls back to the Debian client');
  const pid = c.pid;
  assert.ok(pid !== undefined);
  await c.stop('immediate');
  assert.equal(isAlive(pid), false);
  await c.destroy();
});

test('serverBinDir: PostgreSQL 18 without data checksums (its initdb turns them on unless told not to); 14 with them', async () => {
  const c18 = await Cluster.create({ binDir: serverBinDir(18), dataChecksums: false, conf: { fsync: false } });
  cleanup.push(() => c18.destroy());
  assert.deepEqual(await c18.query(`SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('data_checksums') AS sums`), [{ major: 18, sums: 'off' }]);
  await c18.destroy();
  const c14 = await Cluster.create({ binDir: serverBinDir(14), conf: { fsync: false } });
  cleanup.push(() => c14.destroy());
  assert.deepEqual(await c14.query(`SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('data_checksums') AS sums`), [{ major: 14, sums: 'on' }]);
  await c14.destroy();
});
