/**
 * pgbb against pg_basebackup on the same server, in one run, alternating so
 * that neither side always gets the warm cache. A quick subset of suite.ts
 * (`npm run bench`), which also covers fsync, zstd, refresh and a tablespace.
 *
 *   node dist/bench/basebackup.js [--scale N] [--runs N] [--conninfo STR] [--modes stdout,tar,plain] [--baseline CLI]
 *
 * Without --conninfo it starts a Debian PostgreSQL 15 in a temp directory and
 * fills it with pgbench -i -s N (default 50, ~750 MB). Each run is a fast
 * checkpoint backup (see support/backup-modes.ts for the exact arguments):
 *   stdout   pg_basebackup -Ft -X fetch -D - > /dev/null  vs  pgbb backup -X fetch -D - > /dev/null
 *            (pg_basebackup cannot stream WAL into a tar on stdout)
 *   tar      pg_basebackup -Ft -D DIR -N          vs  pgbb backup -F tar -D DIR -N
 *   plain    pg_basebackup -Fp -D DIR -N          vs  pgbb backup -D DIR -N
 * Prints the median wall time, CPU and peak RSS of each, and pgbb/pg_basebackup.
 * --baseline CLI: another build's cli.js (e.g. a copy of dist/ from before a
 * change, with node_modules reachable from it), run in the same rotation, so
 * that a change is measured against its base on the same server and load.
 */
import { promises as fs } from 'node:fs';
import { Client } from 'pg';
import { makeTempDir } from '../test/support/cluster';
import { arg, numArg } from './support/args';
import { MODES, PG_BASEBACKUP, pgbbCommand, type Mode } from './support/backup-modes';
import { resolve } from 'node:path';
import { fill, startBenchServer, type BenchServer } from './support/bench-server';
import { measure, type Sample } from './support/measure';
import { fresh } from './support/scratch';
import { median } from './support/stats';

async function main(): Promise<void> {
  const runs = numArg('runs', 3);
  const scale = numArg('scale', 50);
  let server: BenchServer | null = null;
  let conninfo = arg('conninfo', '');
  const baseline = arg('baseline', '');
  const modes = arg('modes', 'stdout,tar,plain').split(',');
  const scratch = await makeTempDir('pgbb-bench-');
  try {
    if (!conninfo) {
      server = await startBenchServer();
      await fill(server, scale, 0);
      conninfo = server.conninfo;
    }
    const run = (m: Mode, who: 'pgbb' | 'pg' | 'base'): Promise<Sample> =>
      fresh(scratch, who, (dir) => {
        const [cmd, args] =
          who === 'pg' ? [PG_BASEBACKUP, m.pgBasebackup({ conninfo, dir })]
          : who === 'base' ? [process.execPath, [resolve(baseline), ...m.pgbb({ conninfo, dir })]]
          : pgbbCommand(m.pgbb({ conninfo, dir }));
        return measure(cmd, args);
      });
    const size = await backupSize(conninfo);
    console.log(`database size ${(size / 1e6).toFixed(0)} MB, ${runs} alternating runs per mode`);
    console.log(`mode    pg_basebackup               pgbb                        ratio (time)${baseline ? '   baseline pgbb' : ''}`);
    for (const m of MODES.filter((x) => modes.includes(x.key))) {
      const a: Sample[] = [];
      const b: Sample[] = [];
      const c: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        // pg_basebackup first, then the two builds in turn: each build follows pg_basebackup and the other build equally often.
        const order: Array<'pg' | 'pgbb' | 'base'> = !baseline ? ['pg', 'pgbb'] : i % 2 === 0 ? ['pg', 'pgbb', 'base'] : ['pg', 'base', 'pgbb'];
        for (const who of order) (who === 'pg' ? b : who === 'pgbb' ? a : c).push(await run(m, who));
      }
      const med = (xs: Sample[], k: 'wall' | 'cpu' | 'maxRssKb') => median(xs.map((s) => s[k]));
      const fmt = (xs: Sample[]) =>
        `${med(xs, 'wall').toFixed(2)} s ${med(xs, 'cpu').toFixed(2)} CPU ${(Math.max(...xs.map((s) => s.maxRssKb)) / 1024).toFixed(0).padStart(4)} MB`.padEnd(28);
      console.log(
        `${m.key.padEnd(8)}${fmt(b)}${fmt(a)}${(med(a, 'wall') / med(b, 'wall')).toFixed(2)}×  (${(size / 1e6 / med(a, 'wall')).toFixed(0)} MB/s pgbb)${c.length ? `   ${fmt(c)}` : ''}`,
      );
    }
  } finally {
    await server?.cluster.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function backupSize(conninfo: string): Promise<number> {
  const kv = Object.fromEntries(conninfo.split(' ').map((p) => p.split('=')));
  const c = new Client({ host: kv.host, port: Number(kv.port), user: kv.user, database: 'postgres' });
  await c.connect();
  try {
    const r = await c.query(`SELECT sum(pg_database_size(datname))::bigint AS s FROM pg_database`);
    return Number(r.rows[0].s);
  } finally {
    await c.end();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
