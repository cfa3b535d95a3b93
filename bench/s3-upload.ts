/**
 * S3 upload against local tar files: the same synthetic member stream (one
 * archive of --mib MiB, incompressible, no compression) written by the S3
 * sink to s3rver on loopback and by the tar-files sink to local disk,
 * alternating, --runs times each; wall, CPU seconds (user+sys) and peak RSS
 * of the writing process (bench/support/measure.ts). Printed, not asserted.
 * s3rver itself (in this process) is the bottleneck on loopback (~80 MB/s,
 * DESIGN.md), so wall time says more about it than about pgbb: compare CPU
 * seconds, and peak RSS against the goal (< 150 MB during a 2 GB upload).
 *
 *   node dist/bench/s3-upload.js [--mib 2048] [--runs 2] [--queue 3] [--part-mib 8]
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { measure, type Sample } from './support/measure';
import { numArg } from './support/args';
import { startS3Server } from '../test/support/s3-server';
import { makeTempDir } from '../test/support/run';

const CHILD = join(__dirname, 's3-upload-child.js');

async function main(): Promise<void> {
  const mib = numArg('mib', 2048);
  const runs = numArg('runs', 2);
  const queue = numArg('queue', 3);
  const partMib = numArg('part-mib', 8);
  const s3 = await startS3Server({ bucket: 'pgbb-bench' });
  Object.assign(process.env, s3.env);
  const rows: { to: string; s: Sample }[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const dir = await makeTempDir('pgbb-bench-tar-');
      try {
        rows.push({ to: 'tar', s: await measure(process.execPath, [CHILD, '--to', 'tar', '--dir', join(dir, 't'), '--mib', String(mib)]) });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      rows.push({ to: `s3 q${queue} ${partMib}M`, s: await measure(process.execPath, [CHILD, '--to', 's3', '--bucket', 'pgbb-bench', '--mib', String(mib), '--queue', String(queue), '--part-mib', String(partMib)]) });
    }
  } finally {
    await s3.stop();
  }
  console.log(`| sink | MiB | wall s | MB/s | CPU s | peak RSS MB |\n|---|---|---|---|---|---|`);
  for (const { to, s } of rows) {
    console.log(`| ${to} | ${mib} | ${s.wall.toFixed(1)} | ${((mib * 1.048576) / s.wall).toFixed(0)} | ${s.cpu.toFixed(2)} | ${(s.maxRssKb / 1024).toFixed(0)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
