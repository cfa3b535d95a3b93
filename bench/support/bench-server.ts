/**
 * The server the bench backs up: PostgreSQL 15 started by the test harness
 * (temp dir, free port, as the postgres OS user; stopped by pid on exit, on
 * SIGINT/SIGTERM too — see test/support/reaper.ts), filled with pgbench.
 *
 * Autovacuum is off so that the only page changes between runs are the
 * bench's own (the refresh table counts changed pages).
 */
import { Cluster } from '../../test/support/cluster';

export interface BenchServer {
  cluster: Cluster;
  conninfo: string;
}

/** `netns`: in that network namespace (bench/support/delayed-link.ts). */
export async function startBenchServer(opts: { netns?: { name: string; address: string } } = {}): Promise<BenchServer> {
  const cluster = await Cluster.create({ conf: { autovacuum: 'off', max_wal_size: '4GB' }, ...(opts.netns ? { netns: opts.netns } : {}) });
  return { cluster, conninfo: `host=${cluster.host} port=${cluster.port} user=postgres` };
}

/** pgbench -i -s scale, then `files` one-row tables (one 8 KiB file each), then frozen and checkpointed. */
export async function fill(s: BenchServer, scale: number, files: number): Promise<void> {
  log(`filling pgbench scale ${scale}…`);
  await s.cluster.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);
  // Batches: every table created in a transaction holds a lock until commit (max_locks_per_transaction).
  for (let from = 1; from <= files; from += 500) {
    const to = Math.min(files, from + 499);
    if (from === 1 || to % 10_000 === 0) log(`small files ${to}/${files}…`);
    await s.cluster.query(
      `DO $$ BEGIN FOR i IN ${from}..${to} LOOP EXECUTE format('CREATE TABLE bench_f%s AS SELECT 1 AS i', i); END LOOP; END $$`,
    );
  }
  await settle(s);
}

/**
 * A tablespace holding a copy of every 10th row of pgbench_accounts: the
 * backups then cover pg_tblspc (tar: one more archive; plain: -T) at ~10%
 * more data. Returns its location, for -T mappings.
 */
export async function addTablespace(s: BenchServer): Promise<string> {
  const location = await s.cluster.makeDir('ts');
  log('adding a tablespace…');
  await s.cluster.query(`CREATE TABLESPACE bench_ts LOCATION '${location}'`);
  await s.cluster.query('CREATE TABLE bench_ts_copy TABLESPACE bench_ts AS SELECT * FROM pgbench_accounts WHERE aid % 10 = 0');
  await settle(s);
  return location;
}

export async function settle(s: BenchServer): Promise<void> {
  await s.cluster.query('VACUUM FREEZE');
  await s.cluster.query('CHECKPOINT');
}

/** Bytes of all databases plus tablespaces, as the server counts them. */
export async function databaseBytes(s: BenchServer): Promise<number> {
  const [r] = await s.cluster.query<{ n: string }>('SELECT sum(pg_database_size(datname))::bigint AS n FROM pg_database');
  return Number(r.n);
}

export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}
