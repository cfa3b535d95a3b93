/**
 * `npm run demo`: the main job on a fresh machine, with nothing but npm.
 *
 *   embedded PostgreSQL 17 (npm package) ─ sample data ─► pgbb backup ─► ./demo-backup
 *                                                           │
 *        pgbb verify (manifest, page checksums, WAL) ◄──────┤
 *        pg_verifybackup (when a new enough one is installed) ◄┤
 *        pgbb restore ─► ./demo-restore, started, data compared ◄┘
 *
 * ./demo-backup, ./demo-restore and their tablespace directories
 * (./demo-backup-ts, ./demo-restore-ts) are replaced on each run.
 */
import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Cluster, embeddedBinDir, chownToPostgres } from '../test/support/cluster';
import { runPgbb } from '../test/support/pgbb';

const TARGET = resolve('demo-backup');
const TS_TARGET = resolve('demo-backup-ts');
const RESTORE = resolve('demo-restore');
const RESTORE_TS = resolve('demo-restore-ts');

async function fill(c: Cluster): Promise<void> {
  const tsDir = await c.makeDir('tablespace');
  await c.query(`CREATE TABLESPACE demo_ts LOCATION '${tsDir}'`);
  await c.query(`CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric)`);
  await c.query(`INSERT INTO accounts SELECT i, md5(i::text), (i::bigint * 7919) % 100000 FROM generate_series(1, 300000) i`);
  await c.query(`CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, payload jsonb) TABLESPACE demo_ts`);
  await c.query(
    `INSERT INTO events (at, payload) SELECT '2026-01-01'::timestamptz + i * interval '1 minute', jsonb_build_object('n', i, 'tag', md5(i::text)) FROM generate_series(1, 100000) i`,
  );
  await c.query(`SELECT lo_from_bytea(0, convert_to(repeat('pgbb', 100000), 'UTF8'))`);
}

async function summary(c: Cluster): Promise<string> {
  const [r] = await c.query(`SELECT
      (SELECT count(*) || ' accounts, sum ' || sum(balance) || ', md5 ' || md5(string_agg(id || owner, ',' ORDER BY id)) FROM accounts) AS accounts,
      (SELECT count(*) || ' events, md5 ' || md5(string_agg(payload::text, ',' ORDER BY id)) FROM events) AS events,
      (SELECT count(*) || ' large object(s)' FROM pg_largeobject_metadata) AS lobs`);
  return `${r.accounts}\n${r.events}\n${r.lobs}`;
}

/** A pg_verifybackup that reads this server's manifest (its major version or newer). */
function findVerifyBackup(major: number): string | null {
  for (let v = 18; v >= major; v--) {
    const p = `/usr/lib/postgresql/${v}/bin/pg_verifybackup`;
    if (existsSync(p)) return p;
  }
  return null;
}

async function main(): Promise<void> {
  for (const dir of [TARGET, TS_TARGET, RESTORE, RESTORE_TS]) await fs.rm(dir, { recursive: true, force: true });
  console.log('starting a throwaway PostgreSQL (embedded, from npm)…');
  const source = await Cluster.create({ binDir: embeddedBinDir() });
  let restored: Cluster | null = null;
  try {
    await fill(source);
    const [{ version }] = await source.query(`SELECT current_setting('server_version') AS version`);
    const [{ tsloc }] = await source.query(`SELECT pg_tablespace_location(oid) AS tsloc FROM pg_tablespace WHERE spcname = 'demo_ts'`);
    const expected = await summary(source);
    console.log(`PostgreSQL ${version} on port ${source.port}, sample data:\n${indent(expected)}`);

    const t0 = Date.now();
    const r = await runPgbb([
      'backup', '-d', `host=127.0.0.1 port=${source.port} user=postgres`,
      '-D', TARGET, '-T', `${tsloc}=${TS_TARGET}`, '-c', 'fast', '-v',
    ]);
    if (r.code !== 0) throw new Error(`pgbb backup failed: ${r.stderr.trim()}`);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`\npgbb backup -D ${TARGET}\n${indent(r.stderr.trim())}`);
    console.log(`  ${(await du(TARGET)) + (await du(TS_TARGET))} bytes on disk (the files above, backup_manifest and pgbb's chunk map) in ${seconds.toFixed(1)} s`);

    const checks: string[] = [];
    const pv = await runPgbb(['verify', TARGET]);
    if (pv.code !== 0) throw new Error(`pgbb verify rejected the backup:\n${pv.stderr.trim()}`);
    console.log(`\npgbb verify ${TARGET}\n  ${pv.stdout.trim()}`);
    console.log(`  ${agreement(r.stderr, pv.stdout)}`);
    checks.push('pgbb verify checked every file, page and the WAL');

    const major = Math.floor(Number((await source.query(`SELECT current_setting('server_version_num') AS v`))[0].v) / 10000);
    const verifier = findVerifyBackup(major);
    if (verifier) {
      checks.push('pg_verifybackup accepted it');
      const v = spawnSync(verifier, [TARGET], { encoding: 'utf8' });
      if (v.status !== 0) throw new Error(`pg_verifybackup rejected the backup: ${(v.stderr || v.stdout).trim()}`);
      console.log(`\n${verifier}: ${v.stdout.trim()}`);
    } else {
      console.log(`\nno pg_verifybackup ${major} or newer is installed here (Debian: apt-get install postgresql-${major}); skipping that check`);
    }

    // Restore writes outside -D only where told: without -T (or --tablespaces-at-recorded-locations) it refuses.
    const refused = await runPgbb(['restore', TARGET, '-D', RESTORE]);
    if (refused.code !== 1 || existsSync(RESTORE)) throw new Error(`pgbb restore without -T did not refuse: ${refused.stderr.trim()}`);
    console.log(`
pgbb restore ${TARGET} -D ${RESTORE}    (no -T)
${indent(refused.stderr.trim())}`);
    checks.push('restore without -T refused to write the tablespace where the backup put it');

    const rr = await runPgbb(['restore', TARGET, '-D', RESTORE, '-T', `${TS_TARGET}=${RESTORE_TS}`, '-v']);
    if (rr.code !== 0) throw new Error(`pgbb restore failed: ${rr.stderr.trim()}`);
    console.log(`\npgbb restore ${TARGET} -D ${RESTORE}\n${indent(rr.stderr.trim())}`);
    console.log(`  ${restoredAgreement(r.stderr, rr.stderr)}`);
    console.log('starting the restored copy…');
    await chownToPostgres(RESTORE_TS);
    restored = await Cluster.startExisting(RESTORE, { binDir: embeddedBinDir() });
    const got = await summary(restored);
    console.log(`restored copy on port ${restored.port}:\n${indent(got)}`);
    if (got !== expected) throw new Error('the restored copy does not hold the same data');
    checks.push('the restored copy started and holds the same data');
    console.log(`\nOK: backed up; ${checks.join('; ')}.`);
  } finally {
    await restored?.destroy();
    await source.destroy();
  }
}

function indent(s: string): string {
  return s.split('\n').map((l) => `  ${l}`).join('\n');
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await du(p);
    else if (e.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

/** The -v lines' counts: `N files, B bytes (of them WAL: n files, b bytes)`, or the verify line's `N files, B bytes`. */
function counts(text: string, what: RegExp): { files: number; bytes: number; walFiles: number; walBytes: number } | null {
  const m = what.exec(text);
  return m ? { files: Number(m[1]), bytes: Number(m[2]), walFiles: Number(m[3] ?? 0), walBytes: Number(m[4] ?? 0) } : null;
}
const BACKED_UP = /backup complete: (\d+) files, (\d+) bytes \(of them WAL: (\d+) files, (\d+) bytes\)/;
const VERIFIED = /verified: (\d+) files, (\d+) bytes/;
const RESTORED = /restored (\d+) files, (\d+) bytes \(of them pg_wal\/: (\d+) files, (\d+) bytes\)/;

/** Why backup and verify count differently: verify counts what the manifest lists, and the manifest lists no WAL. */
function agreement(backupOut: string, verifyOut: string): string {
  const b = counts(backupOut, BACKED_UP);
  const v = counts(verifyOut, VERIFIED);
  if (!b || !v) return '(counts not found)';
  const same = b.files - b.walFiles === v.files && b.bytes - b.walBytes === v.bytes;
  return same
    ? `the counts agree: ${b.files} files / ${b.bytes} bytes backed up = the manifest's ${v.files} / ${v.bytes} + ${b.walFiles} / ${b.walBytes} of WAL`
    : `the counts differ: backed up ${b.files - b.walFiles} files / ${b.bytes - b.walBytes} bytes besides WAL, the manifest lists ${v.files} / ${v.bytes}`;
}

/** Restore writes what the backup holds: what was backed up, plus pgbb's chunk map in pg_wal/ (written after the data). */
function restoredAgreement(backupOut: string, restoreOut: string): string {
  const b = counts(backupOut, BACKED_UP);
  const r = counts(restoreOut, RESTORED);
  if (!b || !r) return '(counts not found)';
  const same = b.files - b.walFiles === r.files - r.walFiles && b.bytes - b.walBytes === r.bytes - r.walBytes;
  const extra = `${r.walFiles - b.walFiles} file(s), ${r.walBytes - b.walBytes} bytes more in pg_wal/: pgbb's chunk map`;
  return same ? `the counts agree: the same ${r.files - r.walFiles} files / ${r.bytes - r.walBytes} bytes besides pg_wal/ as backed up; ${extra}` : `the counts differ from the backup's: ${r.files} / ${r.bytes} restored, ${b.files} / ${b.bytes} backed up`;
}

