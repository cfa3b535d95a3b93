/**
 * zstd: the compress transform alone, then a compressed tar backup against
 * pg_basebackup on the same server. Printed, not asserted; on a shared
 * machine the figures are noisy.
 *
 *   node dist/bench/zstd.js [--corpus-scale 10] [--gib 1] [--scale 30] [--runs 3]
 *                           [--skip-throughput] [--skip-backup]
 *
 * One harness PostgreSQL 15 in a temp dir:
 * (a) throughput — pgbench -i -s <corpus-scale>, its relation files (base/)
 *     read into memory and fed repeatedly, in 32 KiB slices as tar-stream
 *     writes them, through zstdCompress() into a null sink until <gib> GiB
 *     went in; levels 1 and 3 × workers 0, 1, 2. MB/s of input, CPU seconds
 *     (all threads) and the compression ratio.
 * (b) backup — pgbench -i -s <scale>, then alternating, <runs> times each:
 *       pg_basebackup -Ft -D DIR --compress=client-zstd:level=1,workers=2 -X fetch -c fast -N
 *       pgbb library pipeline in a child node process: ReplicationSource
 *         (-X fetch, fast checkpoint) → TarFilesSink({ compress: zstd level 1
 *         workers 2, sync: false })
 *     median wall time, CPU, peak RSS and the compressed size of the output.
 *     The same pair uncompressed (-Ft without --compress; TarFilesSink without
 *     compress) runs alongside, so that the cost of zstd can be told apart
 *     from the cost of the rest of the pipeline (`--no-baseline` skips it).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cluster, DEBIAN_PG15_BIN, makeTempDir } from '../test/support/cluster';
import { zstdCompress } from '../transforms/zstd-compress';
import { ReplicationSource } from '../src/sources/replication-source';
import { TarFilesSink } from '../sinks/tar-files';
import { runPipeline } from '../src/pipeline';
import { arg, flag } from './support/args';
import { median } from './support/stats';

const CHUNK = 32 * 1024;

/** Every regular file under dir (relation files, FSM/VM, catalogs), concatenated. */
async function readTree(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) parts.push(await fs.readFile(join(e.parentPath ?? e.path, e.name)));
  }
  return Buffer.concat(parts);
}

async function throughput(corpus: Buffer, totalBytes: number, level: number, workers: number) {
  const c = zstdCompress({ level, workers });
  const feed = async function* () {
    let sent = 0;
    while (sent < totalBytes) {
      for (let at = 0; at < corpus.length && sent < totalBytes; at += CHUNK) {
        const chunk = corpus.subarray(at, Math.min(at + CHUNK, corpus.length, at + totalBytes - sent));
        sent += chunk.length;
        yield chunk;
      }
    }
  };
  const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await pipeline(feed, c, sink);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const r = c.result!;
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6, mbps: r.bytesIn / 1e6 / seconds, ratio: r.bytesIn / r.bytesOut };
}

interface Sample {
  seconds: number;
  cpu: number;
  maxRssKb: number;
}

/** Wall time, CPU seconds and peak RSS of a command, through /usr/bin/time. */
function timed(cmd: string, args: string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(err.trim().split('\n').pop() ?? '');
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.trim()}`));
      resolve({ seconds: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), maxRssKb: Number(m[4]) });
    });
  });
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(join(dir, name))).size;
  return total;
}

/** The pgbb side of (b), run in a child so that it is timed like pg_basebackup. */
async function childBackup(port: number, target: string, zstd: boolean): Promise<void> {
  const source = new ReplicationSource({ connection: { host: '127.0.0.1', port, user: 'postgres' }, checkpoint: 'fast', wal: 'fetch' });
  const compress = zstd ? ({ method: 'zstd', level: 1, workers: 2 } as const) : undefined;
  const sink = new TarFilesSink({ target, sync: false, compress });
  await sink.ready();
  await runPipeline(source, [], sink);
}

async function main(): Promise<void> {
  if (flag('child-backup')) return childBackup(Number(arg('port', '0')), arg('target', ''), arg('compress', 'zstd') === 'zstd');
  const corpusScale = Number(arg('corpus-scale', '10'));
  const scale = Number(arg('scale', '30'));
  const runs = Number(arg('runs', '3'));
  const totalBytes = Math.round(Number(arg('gib', '1')) * 2 ** 30);
  const cluster = await Cluster.create();
  const scratch = await makeTempDir('pgbb-bench-zstd-');
  try {
    if (!flag('skip-throughput')) {
      process.stderr.write(`filling pgbench scale ${corpusScale} for the corpus…\n`);
      await cluster.pgbench(['-i', '-q', '-s', String(corpusScale), 'postgres']);
      await cluster.query('CHECKPOINT');
      const corpus = await readTree(join(cluster.dataDir, 'base'));
      console.log(`(a) zstdCompress throughput: ${(totalBytes / 2 ** 30).toFixed(2)} GiB of pgbench scale ${corpusScale} relation files (${(corpus.length / 1e6).toFixed(0)} MB, repeated), 32 KiB writes`);
      console.log('level workers   MB/s   wall s  cpu s  ratio');
      for (const level of [1, 3]) {
        for (const workers of [0, 1, 2]) {
          const r = await throughput(corpus, totalBytes, level, workers);
          console.log(
            `${String(level).padStart(5)} ${String(workers).padStart(7)} ${r.mbps.toFixed(0).padStart(6)} ${r.seconds.toFixed(2).padStart(8)} ${r.cpu.toFixed(2).padStart(6)} ${r.ratio.toFixed(2).padStart(6)}`,
          );
        }
      }
    }
    if (!flag('skip-backup')) {
      process.stderr.write(`filling pgbench scale ${scale} for the backups…\n`);
      await cluster.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);
      await cluster.query('CHECKPOINT');
      const [{ size }] = await cluster.query<{ size: string }>('SELECT sum(pg_database_size(datname))::bigint AS size FROM pg_database');
      const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres`;
      const pgBasebackup = (extra: string[]) => (dir: string) =>
        timed(join(DEBIAN_PG15_BIN, 'pg_basebackup'), ['-d', conninfo, '-Ft', '-D', dir, ...extra, '-X', 'fetch', '-c', 'fast', '-N']);
      const pgbb = (compress: string) => (dir: string) =>
        timed(process.execPath, [__filename, '--child-backup', '--port', String(cluster.port), '--target', dir, '--compress', compress]);
      const sides: Record<string, (dir: string) => Promise<Sample>> = {
        'pg_basebackup zstd': pgBasebackup(['--compress=client-zstd:level=1,workers=2']),
        'pgbb zstd': pgbb('zstd'),
      };
      if (!flag('no-baseline')) {
        sides['pg_basebackup none'] = pgBasebackup([]);
        sides['pgbb none'] = pgbb('none');
      }
      const samples: Record<string, { s: Sample[]; bytes: number[] }> = {};
      for (const name of Object.keys(sides)) samples[name] = { s: [], bytes: [] };
      for (let i = 0; i < runs; i++) {
        for (const [name, fn] of Object.entries(sides)) {
          const dir = join(scratch, name);
          await fs.rm(dir, { recursive: true, force: true });
          samples[name].s.push(await fn(dir));
          samples[name].bytes.push(await dirBytes(dir));
          await fs.rm(dir, { recursive: true, force: true });
        }
      }
      console.log(`(b) tar + zstd level 1, 2 workers, -X fetch, fast checkpoint, no fsync: database ${(Number(size) / 1e6).toFixed(0)} MB (pgbench scale ${scale}), ${runs} alternating runs, median`);
      console.log('side                 wall s   cpu s  peak RSS  output MB   runs (wall s)');
      for (const [name, { s, bytes }] of Object.entries(samples)) {
        console.log(
          `${name.padEnd(20)} ${median(s.map((x) => x.seconds)).toFixed(2).padStart(6)} ${median(s.map((x) => x.cpu)).toFixed(2).padStart(7)} ` +
            `${(Math.max(...s.map((x) => x.maxRssKb)) / 1024).toFixed(0).padStart(6)} MB ${(median(bytes) / 1e6).toFixed(1).padStart(9)}   ${s.map((x) => x.seconds.toFixed(2)).join(' ')}`,
        );
      }
      const wall = (name: string) => median(samples[name].s.map((x) => x.seconds));
      console.log(`pgbb / pg_basebackup wall time, zstd: ${(wall('pgbb zstd') / wall('pg_basebackup zstd')).toFixed(2)}×`);
      if (samples['pgbb none']) {
        console.log(`pgbb / pg_basebackup wall time, uncompressed: ${(wall('pgbb none') / wall('pg_basebackup none')).toFixed(2)}×`);
      }
    }
  } finally {
    await cluster.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
