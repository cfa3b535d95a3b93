/**
 * -j N against pg_basebackup on loopback, and refresh -j after a 1% change.
 *
 *   node dist/bench/parallel.js [--scale N] [--runs N] [--jobs 1,2,4,8]
 *
 * Starts a PostgreSQL 15 (bench/support/bench-server.ts), fills pgbench
 * scale N (default 65, ~1 GB), then per run, in one order: pg_basebackup
 * -Fp, pgbb without -j (BASE_BACKUP), pgbb -j N for each N, and pgbb -j 4
 * --local-pgdata; all plain, -c fast -N. Prints each one's median wall time,
 * CPU and peak RSS of the client. Then a refresh: a -j 4 backup, 1% of
 * pgbench_accounts updated (a contiguous range), `pgbb refresh -j 4 -X none`
 * — its bytesReceived against the database's size.
 * Not measured here: a delayed link (network namespaces with netem need
 * privileges this bench does not assume).
 */
import { join } from 'node:path';
import { makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';
import { arg, numArg, onlyKnown } from './support/args';
import { databaseBytes, fill, log, startBenchServer } from './support/bench-server';
import { measure, type Sample } from './support/measure';
import { fresh } from './support/scratch';
import { median, mib, seconds } from './support/stats';

const PG_BIN = '/usr/lib/postgresql/15/bin';

async function main(): Promise<void> {
  onlyKnown(['scale', 'runs', 'jobs']);
  const scale = numArg('scale', 65);
  const runs = numArg('runs', 2);
  const jobs = arg('jobs', '1,2,4,8').split(',').map(Number);
  const server = await startBenchServer();
  const scratch = await makeTempDir('pgbb-bench-par-');
  try {
    await fill(server, scale, 0);
    const size = await databaseBytes(server);
    const conn = server.conninfo;
    const modes: [string, string, string[]][] = [
      ['pg_basebackup', join(PG_BIN, 'pg_basebackup'), ['-d', conn, '-c', 'fast', '-N', '-D']],
      ['pgbb (BASE_BACKUP)', process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-N', '-D']],
      ...jobs.filter((j) => j > 1).map((j): [string, string, string[]] => [`pgbb -j ${j}`, process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-N', '-j', String(j), '-D']]),
      ['pgbb -j 4 --local-pgdata', process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-N', '-j', '4', '--local-pgdata', server.cluster.dataDir, '-D']],
    ];
    const samples = new Map<string, Sample[]>(modes.map(([name]) => [name, []]));
    for (let r = 0; r < runs; r++) {
      for (const [name, cmd, args] of modes) {
        log(`run ${r + 1}/${runs}: ${name}`);
        samples.get(name)!.push(await fresh(scratch, 'backup', (dir) => measure(cmd, [...args, dir])));
      }
    }
    const lines = [`database ${mib(size)}, median of ${runs} runs on loopback`, '', '| mode | wall | client CPU | client peak RSS |', '|---|---|---|---|'];
    for (const [name, s] of samples) {
      lines.push(`| ${name} | ${seconds(median(s.map((x) => x.wall)))} | ${seconds(median(s.map((x) => x.cpu)))} | ${Math.round(median(s.map((x) => x.maxRssKb)) / 1024)} MiB |`);
    }
    const received = await fresh(scratch, 'refresh', async (dir) => {
      await measure(process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-N', '-j', '4', '-D', dir]);
      const [{ n }] = await server.cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_accounts');
      await server.cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${Math.ceil(Number(n) / 100)}`);
      await server.cluster.query('CHECKPOINT');
      const s = await measure(process.execPath, [PGBB_CLI, 'refresh', '-d', conn, '-c', 'fast', '-N', '-j', '4', '-X', 'none', '--json', '-D', dir]);
      return JSON.parse(s.stderr.trim().split('\n').pop()!).bytesReceived as number;
    });
    lines.push('', `refresh -j 4 after 1% of pgbench_accounts changed: received ${mib(received)} of ${mib(size)} (${((100 * received) / size).toFixed(2)}%)`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await server.cluster.destroy();
    await fresh(scratch, '', async () => {});
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
