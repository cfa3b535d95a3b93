/**
 * -j N against pg_basebackup on loopback and on a delayed link, and refresh
 * -j after a 1% change.
 *
 *   node dist/bench/parallel.js [--scale N] [--runs N] [--jobs 1,2,4,8] [--delay-ms 10] [--out DIR]
 *
 * Needs root: the server (PostgreSQL 15, bench/support/bench-server.ts,
 * pgbench scale N, default 65 ≈ 1 GB) runs in a network namespace joined to
 * the root one by a veth pair (bench/support/delayed-link.ts): loopback runs
 * happen inside that namespace, delayed ones cross the pair with a one-way
 * delay of --delay-ms (netem, or the relay where the kernel has no netem —
 * the results say which). Per run and link, in one order: pg_basebackup
 * -Fp, pgbb -j N for each N (-j 1 is BASE_BACKUP, one stream like
 * pg_basebackup), and on loopback pgbb -j 4 --local-pgdata; all plain,
 * -c fast -N -X stream. Each one's median wall time, throughput (database
 * bytes / wall), CPU and peak RSS of the client (the relay's CPU is this
 * process's, not counted). Then a refresh on loopback: a -j 4 backup, 1% of
 * pgbench_accounts updated (a contiguous range), `pgbb refresh -j 4 -X none`
 * — its bytesReceived against the database's size.
 * Writes <out>/<date>-parallel-<scale>.md (default bench/results).
 */
import { promises as fs } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';
import { arg, numArg, onlyKnown } from './support/args';
import { databaseBytes, fill, log, startBenchServer } from './support/bench-server';
import { setUpDelayedLink, type DelayedLink } from './support/delayed-link';
import { measure, type Sample } from './support/measure';
import { fresh } from './support/scratch';
import { median, mib, seconds } from './support/stats';
import { PG_BASEBACKUP } from './support/backup-modes';

interface Mode {
  name: string;
  /** Without the target directory, which comes last. */
  cmd: [string, string[]];
  loopbackOnly?: boolean;
}

function modes(conn: string, jobs: number[], dataDir: string): Mode[] {
  const pgbb = (extra: string[]): [string, string[]] => [process.execPath, [PGBB_CLI, 'backup', '-d', conn, '-c', 'fast', '-N', ...extra, '-D']];
  return [
    { name: 'pg_basebackup', cmd: [PG_BASEBACKUP, ['-d', conn, '-c', 'fast', '-N', '-X', 'stream', '-D']] },
    ...jobs.map((j) => ({ name: j === 1 ? 'pgbb -j 1 (BASE_BACKUP)' : `pgbb -j ${j}`, cmd: pgbb(['-j', String(j)]) })),
    { name: 'pgbb -j 4 --local-pgdata', cmd: pgbb(['-j', '4', '--local-pgdata', dataDir]), loopbackOnly: true },
  ];
}

async function main(): Promise<void> {
  onlyKnown(['scale', 'runs', 'jobs', 'delay-ms', 'out']);
  const scale = numArg('scale', 65);
  const runs = numArg('runs', 2);
  const delayMs = numArg('delay-ms', 10);
  const jobs = arg('jobs', '1,2,4,8').split(',').map(Number);
  const out = arg('out', join(__dirname, '..', '..', 'bench', 'results'));
  const link: DelayedLink = await setUpDelayedLink(delayMs);
  const scratch = await makeTempDir('pgbb-bench-par-');
  let server: Awaited<ReturnType<typeof startBenchServer>> | undefined;
  try {
    server = await startBenchServer({ netns: link.netns });
    await fill(server, scale, 0);
    const size = await databaseBytes(server);
    const port = server.cluster.port;
    const far = await link.delayed(port);
    const links = [
      { name: 'loopback', conn: server.conninfo, wrap: (c: [string, string[]]) => link.inServerNamespace(...c) },
      { name: `delayed (${2 * delayMs} ms round trip)`, conn: `host=${far.host} port=${far.port} user=postgres`, wrap: (c: [string, string[]]) => c },
    ];
    const samples = new Map<string, Sample[]>();
    for (let r = 0; r < runs; r++) {
      for (const [i, l] of links.entries()) {
        for (const m of modes(l.conn, jobs, server.cluster.dataDir)) {
          if (m.loopbackOnly && i > 0) continue;
          const key = `${l.name}\t${m.name}`;
          log(`run ${r + 1}/${runs}, ${l.name}: ${m.name}`);
          const [cmd, args] = l.wrap(m.cmd);
          const s = await fresh(scratch, 'backup', (dir) => measure(cmd, [...args, dir]));
          samples.set(key, [...(samples.get(key) ?? []), s]);
        }
      }
    }
    const how = link.how === 'netem' ? `tc netem delay ${delayMs}ms on both ends of the veth pair` : `a ${delayMs} ms-each-way relay (this kernel has no netem; bench/support/delay-relay.ts)`;
    const lines = [
      `# pgbb parallel bench ${new Date().toISOString().slice(0, 10)}`,
      '',
      `PostgreSQL 15, pgbench scale ${scale}, ${mib(size)}; median of ${runs} run(s) per mode, plain, \`-c fast -N -X stream\`; ` +
        `delayed link: ${how}; ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end, node ${process.version}`,
      '',
      '| link | mode | wall | throughput | vs pg_basebackup | client CPU | client peak RSS |',
      '|---|---|---|---|---|---|---|',
    ];
    for (const l of links) {
      const base = median((samples.get(`${l.name}\tpg_basebackup`) ?? []).map((x) => x.wall));
      for (const [key, s] of samples) {
        const [ln, mode] = key.split('\t');
        if (ln !== l.name) continue;
        const wall = median(s.map((x) => x.wall));
        lines.push(
          `| ${ln} | ${mode} | ${seconds(wall)} | ${(size / 2 ** 20 / wall).toFixed(0)} MiB/s | ${(base / wall).toFixed(2)}× | ` +
            `${seconds(median(s.map((x) => x.cpu)))} | ${Math.round(median(s.map((x) => x.maxRssKb)) / 1024)} MiB |`,
        );
      }
    }
    const received = await fresh(scratch, 'refresh', async (dir) => {
      const pgbb = (args: string[]) => measure(...link.inServerNamespace(process.execPath, [PGBB_CLI, ...args, '-d', server!.conninfo, '-c', 'fast', '-N', '-D', dir]));
      await pgbb(['backup', '-j', '4']);
      const [{ n }] = await server!.cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_accounts');
      await server!.cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${Math.ceil(Number(n) / 100)}`);
      await server!.cluster.query('CHECKPOINT');
      const s = await pgbb(['refresh', '-j', '4', '-X', 'none', '--json']);
      return JSON.parse(s.stderr.trim().split('\n').pop()!).bytesReceived as number;
    });
    lines.push('', `refresh -j 4 after 1% of pgbench_accounts changed: received ${mib(received)} of ${mib(size)} (${((100 * received) / size).toFixed(2)}%; goal ≤ 5%)`);
    const text = `${lines.join('\n')}\n`;
    process.stdout.write(text);
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(join(out, `${new Date().toISOString().slice(0, 10)}-parallel-${scale}.md`), text);
  } finally {
    await server?.cluster.destroy();
    await link.close();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
