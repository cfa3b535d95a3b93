/**
 * S3 upload against local tar files: the same synthetic member stream (one
 * archive of --mib MiB, incompressible, no compression) written by the S3
 * sink to s3rver on loopback and by the tar-files sink to local disk,
 * alternating, --runs times each; wall, CPU seconds (user+sys) and peak RSS
 * of the writing process (bench/support/measure.ts). Printed, not asserted.
 * s3rver itself (in this process) is the bottleneck on loopback (~80 MB/s,
 * DESIGN.md), so each run is also made against a loopback server that
 * answers the same calls and discards the bodies (support/discard-s3.ts):
 * that row is pgbb's own upload cost, the one to hold against local disk
 * (goal: within 1.2×), with peak RSS (goal < 150 MB during a 2 GB upload).
 *
 *   node dist/bench/s3-upload.js [--mib 2048] [--runs 2] [--queue 3] [--part-mib 8]
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { measure, type Sample } from './support/measure';
import { numArg } from './support/args';
import { startS3Server } from '../test/support/s3-server';
import { makeTempDir } from '../test/support/run';
import { startDiscardS3 } from './support/discard-s3';

const CHILD = join(__dirname, 's3-upload-child.js');

async function main(): Promise<void> {
  const mib = numArg('mib', 2048);
  const runs = numArg('runs', 2);
  const queue = numArg('queue', 3);
  const partMib = numArg('part-mib', 8);
  const s3 = await startS3Server({ bucket: 'pgbb-bench' });
  Object.assign(process.env, s3.env);
  const discard = await startDiscardS3();
  const rows: { to: string; s: Sample }[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const dir = await makeTempDir('pgbb-bench-tar-');
      try {
        rows.push({ to: 'tar', s: await measure(process.execPath, [CHILD, '--to', 'tar', '--dir', join(dir, 't'), '--mib', String(mib)]) });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      const s3Args = [CHILD, '--to', 's3', '--bucket', 'pgbb-bench', '--mib', String(mib), '--queue', String(queue), '--part-mib', String(partMib)];
      rows.push({ to: `s3rver q${queue} ${partMib}M`, s: await measure(process.execPath, s3Args) });
      const endpoint = process.env.AWS_ENDPOINT_URL;
      process.env.AWS_ENDPOINT_URL = discard.endpoint;
      try {
        rows.push({ to: `discarding server q${queue} ${partMib}M`, s: await measure(process.execPath, s3Args) });
      } finally {
        process.env.AWS_ENDPOINT_URL = endpoint;
      }
    }
  } finally {
    await s3.stop();
    await discard.stop();
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
