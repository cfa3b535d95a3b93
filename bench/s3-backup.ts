/**
 * A real backup to S3 against the same archives written to local disk:
 * `pgbb backup -D s3://…` (zstd level 3, one thread: S3's default) and
 * `pgbb backup -F tar -Z zstd:level=3,workers=0 -D DIR` of one pgbench
 * database, alternating, --runs times each, to s3rver and to a loopback
 * server that answers the same S3 calls and discards the bodies
 * (support/discard-s3.ts: pgbb's own upload cost without s3rver's disk
 * copies). Wall, CPU seconds (user+sys) and peak RSS of the pgbb process
 * (bench/support/measure.ts), and each S3 row's wall over the median tar
 * wall (issue 12's goal: within 1.2×). Printed, not asserted.
 *
 *   node dist/bench/s3-backup.js [--scale 40] [--runs 3]
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { measure, type Sample } from './support/measure';
import { numArg } from './support/args';
import { databaseBytes, fill, log, startBenchServer } from './support/bench-server';
import { median } from './support/stats';
import { startDiscardS3 } from './support/discard-s3';
import { startS3Server } from '../test/support/s3-server';
import { makeTempDir } from '../test/support/run';

const CLI = join(__dirname, '..', 'src', 'cli.js');

async function main(): Promise<void> {
  const scale = numArg('scale', 40);
  const runs = numArg('runs', 3);
  const server = await startBenchServer();
  const s3 = await startS3Server({ bucket: 'pgbb-bench' });
  const discard = await startDiscardS3();
  const rows = new Map<string, Sample[]>();
  const add = (what: string, s: Sample) => rows.set(what, [...(rows.get(what) ?? []), s]);
  const common = ['backup', '-d', server.conninfo, '-c', 'fast'];
  let dbBytes = 0;
  try {
    await fill(server, scale, 0);
    dbBytes = await databaseBytes(server);
    for (let i = 0; i < runs; i++) {
      log(`run ${i + 1}/${runs}: tar files…`);
      const dir = await makeTempDir('pgbb-bench-s3tar-');
      try {
        add('tar + zstd:3, local disk', await measure(process.execPath, [CLI, ...common, '-F', 'tar', '-Z', 'zstd:level=3,workers=0', '-D', join(dir, 't')]));
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      log(`run ${i + 1}/${runs}: s3rver…`);
      // s3rver answers from this process: spawned children (not execFileSync) keep it serving.
      add('S3 → s3rver', await measure(process.execPath, [CLI, ...common, '-D', `s3://pgbb-bench/run${i}`], { env: s3.env }));
      log(`run ${i + 1}/${runs}: discarding server…`);
      add('S3 → discarding server', await measure(process.execPath, [CLI, ...common, '-D', `s3://pgbb-bench/run${i}`], { env: { ...s3.env, AWS_ENDPOINT_URL: discard.endpoint } }));
    }
  } finally {
    await s3.stop();
    await discard.stop();
    await server.cluster.destroy();
  }
  const tarWall = median(rows.get('tar + zstd:3, local disk')!.map((s) => s.wall));
  console.log(`pgbench scale ${scale}, ${(dbBytes / 1e6).toFixed(0)} MB of databases; medians of ${runs} alternating runs\n`);
  console.log(`| target | wall s | × tar wall | CPU s | peak RSS MB |\n|---|---|---|---|---|`);
  for (const [what, ss] of rows) {
    const wall = median(ss.map((s) => s.wall));
    const cpu = median(ss.map((s) => s.cpu));
    const rss = median(ss.map((s) => s.maxRssKb / 1024));
    console.log(`| ${what} | ${wall.toFixed(2)} | ${(wall / tarWall).toFixed(2)} | ${cpu.toFixed(2)} | ${rss.toFixed(0)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
