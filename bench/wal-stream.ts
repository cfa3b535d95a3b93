/**
 * -X stream under write load: what a backup costs while pgbench runs.
 *
 *   node dist/bench/wal-stream.js [--cli PATH] [--compare PATH] [--formats plain,tar,stdout] [--scale N] [--runs N]
 *
 * Starts a PostgreSQL 15, fills pgbench scale N (default 10), then for each
 * format (plain, tar, stdout) and run: starts `pgbench -c 2 -T 20`, waits
 * 2 s, and takes `pgbb backup -X stream -c fast` (the CLI at --cli, default
 * this tree's, so that an older build can be measured the same way; with
 * --compare, each backup is taken by both, alternately, so that a busy
 * machine's noise falls on both alike). For
 * each backup: wall time, WAL bytes in the backup, peak RSS, and what the
 * pgbb process wrote (/proc/self/io read at exit: write_bytes, the bytes it
 * dirtied in the page cache; cancelled, those of files it removed before
 * writeback; wchar, bytes passed to write calls, sockets included), and the
 * event loop's delay (p99 and max, monitorEventLoopDelay).
 * Numbers on a shared 2-core machine are noisy: run it twice.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';
import { arg } from './support/args';

/** Loaded into the pgbb process with --require: its own I/O counters and peak RSS at exit. */
const PROBE = `
const fs = require('fs');
const delay = require('perf_hooks').monitorEventLoopDelay({ resolution: 10 });
delay.enable();
process.on('exit', () => {
  const io = Object.fromEntries(fs.readFileSync('/proc/self/io', 'utf8').trim().split('\\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));
  const hwm = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  fs.writeFileSync(process.env.PGBB_BENCH_OUT, JSON.stringify({ ...io, rssKb: Number(hwm[1]), loopP99Ms: delay.percentile(99) / 1e6, loopMaxMs: delay.max / 1e6 }));
});
`;

interface Probe {
  write_bytes: number;
  cancelled_write_bytes: number;
  wchar: number;
  rssKb: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

async function walBytes(format: string, target: string): Promise<number> {
  if (format === 'plain') {
    let n = 0;
    for (const f of await fs.readdir(join(target, 'pg_wal'))) if (/^[0-9A-F]{24}$/.test(f)) n += (await fs.stat(join(target, 'pg_wal', f))).size;
    return n;
  }
  const tar = format === 'tar' ? join(target, 'pg_wal.tar') : target;
  const list = spawnSync('tar', ['-tvf', tar], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
  return list
    .split('\n')
    .filter((l) => /[\s/][0-9A-F]{24}$/.test(l))
    .reduce((a, l) => a + Number(l.trim().split(/\s+/)[2]), 0);
}

async function main(): Promise<void> {
  const clis = [arg('cli', PGBB_CLI), ...(arg('compare', '') ? [arg('compare', '')] : [])];
  const formats = arg('formats', 'plain,tar,stdout').split(',');
  const scale = arg('scale', '10');
  const runs = Number(arg('runs', '1'));
  const root = await makeTempDir('pgbb-bench-wal-');
  const probe = join(root, 'probe.js');
  writeFileSync(probe, PROBE);
  const cluster = await Cluster.create({ conf: { max_wal_size: '1GB' } });
  try {
    await cluster.pgbench(['-i', '-q', '-s', scale, 'postgres']);
    clis.forEach((c, i) => console.log(`cli ${i}: ${c}`));
    console.log(`pgbench scale ${scale}`);
    console.log('cli format  seconds  WAL MiB  RSS MiB  write_bytes MiB  cancelled MiB  wchar MiB  loop p99/max ms');
    for (let r = 0; r < runs; r++) {
      for (const format of formats) for (const [ci, cli] of clis.entries()) {
        const target = join(root, `${format}-${r}`);
        const out = join(root, `${format}-${r}.json`);
        const load = cluster.pgbench(['-c', '2', '-T', '20', 'postgres']);
        await new Promise((res) => setTimeout(res, 2000));
        const args = ['backup', '-d', `host=${cluster.host} port=${cluster.port} user=postgres`, '-X', 'stream', '-c', 'fast', '-N'];
        if (format === 'plain') args.push('-D', target);
        else if (format === 'tar') args.push('-F', 'tar', '-D', target);
        else args.push('-D', '-');
        const began = process.hrtime.bigint();
        await new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, ['--require', probe, cli, ...args], {
            env: { ...process.env, PGBB_BENCH_OUT: out },
            stdio: ['ignore', format === 'stdout' ? 'pipe' : 'ignore', 'inherit'],
          });
          if (format === 'stdout') void fs.open(target, 'w').then((fh) => child.stdout!.pipe(fh.createWriteStream()));
          child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pgbb exited ${code}`))));
        });
        const seconds = Number(process.hrtime.bigint() - began) / 1e9;
        await load;
        await new Promise((res) => setTimeout(res, 200)); // the stdout file's last write
        const p = JSON.parse(readFileSync(out, 'utf8')) as Probe;
        const mib = (n: number) => (n / 1048576).toFixed(1).padStart(8);
        console.log(
          `${String(ci).padEnd(3)} ${format.padEnd(7)} ${seconds.toFixed(2).padStart(7)} ${mib(await walBytes(format, target))} ${(p.rssKb / 1024).toFixed(0).padStart(8)} ` +
            `${mib(p.write_bytes)}         ${mib(p.cancelled_write_bytes)}      ${mib(p.wchar)}  ${p.loopP99Ms.toFixed(1)}/${p.loopMaxMs.toFixed(1)}`,
        );
        await fs.rm(target, { recursive: true, force: true });
      }
    }
  } finally {
    await cluster.destroy();
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
