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
 * (new files whole, WAL included), measured by comparing a copy.
 * Every step fsyncs unless --no-sync, and starts after a `sync` (nothing
 * dirty in the page cache). Numbers on a shared 2-core machine are noisy:
 * run it twice.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { Cluster, DEBIAN_PG15_BIN, embeddedBinDir, makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

function timed(cmd: string, args: string[]): { seconds: number; stderr: string } {
  // Every run starts with nothing dirty in the page cache (the comparison copy is 2+ GB of it).
  spawnSync('sync');
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds, stderr: r.stderr };
}

function du(dir: string): number {
  return Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

async function files(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (dir: string) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.set(relative(root, p), (await fs.stat(p)).size);
    }
  };
  await walk(root);
  return out;
}

/** Bytes of `after` that differ from `before`, counted in whole 8 KiB pages (new files whole). */
async function changedBytes(before: string, after: string): Promise<number> {
  const a = await files(before);
  const b = await files(after);
  const page = 8192;
  const bufA = Buffer.alloc(1 << 20);
  const bufB = Buffer.alloc(1 << 20);
  let changed = 0;
  for (const [rel, size] of b) {
    if (rel === 'pg_wal/pgbb.chunkmap' || rel === 'backup_manifest') continue;
    if (!a.has(rel)) {
      changed += size;
      continue;
    }
    const fa = await fs.open(join(before, rel), 'r');
    const fb = await fs.open(join(after, rel), 'r');
    try {
      for (let off = 0; off < size; off += bufB.length) {
        const n = (await fb.read(bufB, 0, bufB.length, off)).bytesRead;
        const m = (await fa.read(bufA, 0, n, off)).bytesRead;
        for (let p = 0; p < n; p += page) {
          const end = Math.min(p + page, n);
          if (end > m || bufA.compare(bufB, p, end, p, end) !== 0) changed += end - p;
        }
      }
    } finally {
      await fa.close();
      await fb.close();
    }
  }
  return changed;
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
  const rows: string[][] = [['run', 'wall s', 'received', 'written', 'changed (pages)', 'written/changed', 'chunks changed/unchanged']];
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
      fullRuns.push(timed(process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-D', dir, '--chunk-size', chunk, ...sync]).seconds);
      if (pg17) continue;
      const other = join(scratch, 'pg_basebackup');
      pgbRuns.push(timed(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-d', conn, '-c', 'fast', '-Fp', '-D', other, ...sync]).seconds);
      pgbBytes = du(other);
      await fs.rm(other, { recursive: true, force: true });
    }
    const fullBytes = du(dir);
    const runs = (xs: number[]) => `${Math.min(...xs).toFixed(2)} (${xs.map((x) => x.toFixed(1)).join(', ')})`;
    rows.push(['pgbb backup (full)', runs(fullRuns), mb(fullBytes), mb(fullBytes), '', '', '']);
    if (!pg17) rows.push(['pg_basebackup -Fp (full)', runs(pgbRuns), mb(pgbBytes), mb(pgbBytes), '', '', '']);
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
      spawnSync('cp', ['-a', dir, before]);
      const r = timed(process.execPath, [PGBB_CLI, 'refresh', '-d', conn, '-c', 'fast', '-D', dir, '--json', ...sync]);
      const res = JSON.parse(r.stderr.split('\n').find((l) => l.includes('"event":"result"'))!);
      const changed = await changedBytes(before, dir);
      await fs.rm(before, { recursive: true, force: true });
      rows.push([
        `refresh, 1% rows ${name} (${res.mode})`, r.seconds.toFixed(2), mb(res.bytesReceived), mb(res.bytesWritten), mb(changed),
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
