/**
 * Incremental refresh against full backups, on one server in one run.
 *
 *   node dist/bench/refresh.js [--scale N] [--chunk-size 1M] [--pg17] [--no-sync]
 *
 * Starts a PostgreSQL (Debian 15; --pg17: the embedded 17 with
 * summarize_wal, where refresh uses BASE_BACKUP INCREMENTAL), fills pgbench
 * scale N (default 150, ~2.3 GB), settles it (VACUUM FREEZE, CHECKPOINT) and
 * times:
 *   full      pgbb backup -D DIR (plain, with its chunk map)
 *   pg_bb     pg_basebackup -Fp -D DIR (PostgreSQL 15 only)
 * then, for each way of changing 1% of pgbench_accounts' rows —
 *   clustered one run of neighbouring rows (recent data, a batch job)
 *   random    rows picked at random, as pgbench's own updates are
 * — plus a new table, a dropped one and VACUUM, times `pgbb refresh` of the
 * full backup and reports what it received and wrote against what actually
 * changed: the 8 KiB pages that differ between the backup before and after
 * (WAL and metadata included; see support/changed-pages.ts), measured by
 * comparing a copy; "kernel: written" is /proc's write_bytes of the run.
 * Every step fsyncs unless --no-sync, and starts after a `sync` (nothing
 * dirty in the page cache). Numbers on a shared 2-core machine are noisy:
 * run it twice.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Cluster, DEBIAN_PG15_BIN, embeddedBinDir, makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';
import { arg, flag } from './support/args';
import { changedBytes, snapshot } from './support/changed-pages';
import { measure } from './support/measure';
import { du } from './support/scratch';

/** Wall seconds, stderr and the bytes the kernel counted as written (support/measure.ts), after a `sync`. */
async function timed(cmd: string, args: string[]): Promise<{ seconds: number; stderr: string; written: number }> {
  const s = await measure(cmd, args);
  return { seconds: s.wall, stderr: s.stderr, written: s.writeBytes };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const scale = Number(arg('scale', '150'));
  const chunk = arg('chunk-size', '1M');
  const pg17 = flag('pg17');
  const sync = flag('no-sync') ? ['-N'] : [];
  const scratch = await makeTempDir('pgbb-bench-refresh-');
  const cluster = await Cluster.create(pg17 ? { binDir: embeddedBinDir(), conf: { summarize_wal: 'on' } } : {});
  const conn = `host=127.0.0.1 port=${cluster.port} user=postgres`;
  const rows: string[][] = [
    ['run', 'wall s', 'received', 'written', 'kernel: written', 'changed (pages)', 'written/changed', 'chunks changed/unchanged'],
  ];
  try {
    process.stderr.write(`filling pgbench scale ${scale}…\n`);
    await cluster.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);
    await cluster.query('VACUUM FREEZE');
    await cluster.query('CHECKPOINT');
    const dir = join(scratch, 'backup');
    // Full backups alternate, twice each, so that neither always meets the other's dirty page cache; the faster run counts.
    const fullRuns: number[] = [];
    const pgbRuns: number[] = [];
    let pgbBytes = 0;
    for (let i = 0; i < 2; i++) {
      await fs.rm(dir, { recursive: true, force: true });
      fullRuns.push((await timed(process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-D', dir, '--chunk-size', chunk, ...sync])).seconds);
      if (pg17) continue;
      const other = join(scratch, 'pg_basebackup');
      pgbRuns.push((await timed(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-d', conn, '-c', 'fast', '-Fp', '-D', other, ...sync])).seconds);
      pgbBytes = du(other);
      await fs.rm(other, { recursive: true, force: true });
    }
    const fullBytes = du(dir);
    const runs = (xs: number[]) => `${Math.min(...xs).toFixed(2)} (${xs.map((x) => x.toFixed(1)).join(', ')})`;
    rows.push(['pgbb backup (full)', runs(fullRuns), mb(fullBytes), mb(fullBytes), '', '', '', '']);
    if (!pg17) rows.push(['pg_basebackup -Fp (full)', runs(pgbRuns), mb(pgbBytes), mb(pgbBytes), '', '', '', '']);
    const accounts = scale * 100_000;
    const n = Math.round(accounts / 100);
    const changes: Array<[string, string]> = [
      ['clustered', `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN ${Math.round(accounts / 3)} AND ${Math.round(accounts / 3) + n - 1}`],
      ['random', `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid IN (SELECT (random() * ${accounts - 1})::int + 1 FROM generate_series(1, ${n}))`],
    ];
    let round = 0;
    for (const [name, sql] of changes) {
      round++;
      await cluster.query(sql);
      await cluster.query(`DROP TABLE IF EXISTS bench_t${round - 1}`);
      await cluster.query(`CREATE TABLE bench_t${round} AS SELECT i, md5(i::text) AS v FROM generate_series(1, 20000) i`);
      await cluster.query('VACUUM');
      const before = join(scratch, 'before');
      snapshot(dir, before);
      const r = await timed(process.execPath, [PGBB_CLI, 'refresh', '-d', conn, '-c', 'fast', '-D', dir, '--json', ...sync]);
      const res = JSON.parse(r.stderr.split('\n').find((l) => l.includes('"event":"result"'))!);
      const c = await changedBytes(before, dir);
      const changed = c.data + c.walMeta;
      await fs.rm(before, { recursive: true, force: true });
      rows.push([
        `refresh, 1% rows ${name} (${res.mode})`, r.seconds.toFixed(2), mb(res.bytesReceived), mb(res.bytesWritten), mb(r.written), mb(changed),
        (res.bytesWritten / changed).toFixed(2), `${res.chunksChanged}/${res.chunksUnchanged}`,
      ]);
    }
  } finally {
    await cluster.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  }
  const width = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(`pgbench scale ${scale}, chunk ${chunk}, PostgreSQL ${pg17 ? 17 : 15}${sync.length ? ', no fsync' : ''}\n`);
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(width[i])).join('  ')}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
