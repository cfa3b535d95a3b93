/**
 * pgbb against pg_basebackup on the same server, in one run, alternating so
 * that neither side always gets the warm cache.
 *
 *   node dist/bench/basebackup.js [--scale N] [--runs N] [--conninfo STR]
 *
 * Without --conninfo it starts a Debian PostgreSQL 15 in a temp directory and
 * fills it with pgbench -i -s N (default 50, ~750 MB). Each run is a fast
 * checkpoint backup with WAL streamed beside it (-X stream, both tools' default):
 *   stdout   pg_basebackup -Ft -X fetch -D - > /dev/null  vs  pgbb backup -X fetch -D - > /dev/null
 *            (pg_basebackup cannot stream WAL into a tar on stdout)
 *   tar      pg_basebackup -Ft -D DIR -N          vs  pgbb backup -F tar -D DIR -N
 *   plain    pg_basebackup -Fp -D DIR -N          vs  pgbb backup -D DIR -N
 * Prints the median wall time and peak RSS of each, and pgbb/pg_basebackup.
 */
import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, DEBIAN_PG15_BIN, makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';

interface Sample {
  seconds: number;
  maxRssKb: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Runs a command under /usr/bin/time for wall time and peak RSS; stdout to a file or /dev/null. */
function timed(cmd: string, args: string[], stdoutTo = '/dev/null'): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const out = openSync(stdoutTo, 'w');
    const child = spawn('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { stdio: ['ignore', out, 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.on('close', (code) => {
      closeSync(out);
      const last = err.trim().split('\n').pop() ?? '';
      const m = /^([\d.]+) (\d+)$/.exec(last);
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.trim()}`));
      resolve({ seconds: Number(m[1]), maxRssKb: Number(m[2]) });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'));
  const scale = Number(arg('scale', '50'));
  let cluster: Cluster | null = null;
  let conninfo = arg('conninfo', '');
  const scratch = await makeTempDir('pgbb-bench-');
  try {
    if (!conninfo) {
      cluster = await Cluster.create();
      process.stderr.write(`filling pgbench scale ${scale}…\n`);
      await cluster.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);
      conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres`;
    }
    const pgbb = (extra: string[]) => [PGBB_CLI, 'backup', '-d', conninfo, '-c', 'fast', ...extra];
    const pgb = (extra: string[]) => ['-d', conninfo, '-c', 'fast', '-X', 'stream', ...extra];
    const pgBasebackup = join(DEBIAN_PG15_BIN, 'pg_basebackup');
    const modes: Record<string, { pgbb: () => Promise<Sample>; pg: () => Promise<Sample> }> = {
      stdout: {
        pgbb: () => timed(process.execPath, pgbb(['-X', 'fetch', '-D', '-'])),
        pg: () => timed(pgBasebackup, ['-d', conninfo, '-c', 'fast', '-X', 'fetch', '-Ft', '-D', '-']),
      },
      tar: {
        pgbb: () => fresh(scratch, 'a', (d) => timed(process.execPath, pgbb(['-F', 'tar', '-N', '-D', d]))),
        pg: () => fresh(scratch, 'b', (d) => timed(pgBasebackup, pgb(['-Ft', '-N', '-D', d]))),
      },
      plain: {
        pgbb: () => fresh(scratch, 'a', (d) => timed(process.execPath, pgbb(['-N', '-D', d]))),
        pg: () => fresh(scratch, 'b', (d) => timed(pgBasebackup, pgb(['-Fp', '-N', '-D', d]))),
      },
    };
    const size = await backupSize(conninfo);
    console.log(`database size ${(size / 1e6).toFixed(0)} MB, ${runs} alternating runs per mode`);
    console.log('mode    pg_basebackup       pgbb                ratio (time)');
    for (const [mode, m] of Object.entries(modes)) {
      const a: Sample[] = [];
      const b: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        b.push(await m.pg());
        a.push(await m.pgbb());
      }
      const pt = median(b.map((s) => s.seconds));
      const bt = median(a.map((s) => s.seconds));
      const fmt = (t: number, rss: number) => `${t.toFixed(2)} s ${(rss / 1024).toFixed(0).padStart(4)} MB`.padEnd(20);
      console.log(
        `${mode.padEnd(8)}${fmt(pt, Math.max(...b.map((s) => s.maxRssKb)))}${fmt(bt, Math.max(...a.map((s) => s.maxRssKb)))}` +
          `${(bt / pt).toFixed(2)}×  (${((size / 1e6) / bt).toFixed(0)} MB/s pgbb)`,
      );
    }
  } finally {
    await cluster?.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function fresh<T>(scratch: string, name: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(scratch, name);
  await fs.rm(dir, { recursive: true, force: true });
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function backupSize(conninfo: string): Promise<number> {
  const { Client } = await import('pg');
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
