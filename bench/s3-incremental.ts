/**
 * S3 incremental size: a full backup of a pgbench database to s3rver on
 * loopback, then an incremental after each change — 1% of the accounts'
 * rows updated in one range, 1% updated scattered (every 100th: every page
 * of the table changes), and nothing — each against the backup before it.
 * Prints what each stored (pgbb list's storedBytes), the ratio to the full
 * backup, and wall, CPU and peak RSS of the pgbb run (bench/support/measure.ts).
 * Printed, not asserted.
 *
 *   node dist/bench/s3-incremental.js [--scale 20]
 */
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { measure, type Sample } from './support/measure';
import { numArg } from './support/args';
import { fill, log, startBenchServer } from './support/bench-server';
import { startS3Server } from '../test/support/s3-server';

const CLI = join(__dirname, '..', 'src', 'cli.js');

async function main(): Promise<void> {
  const scale = numArg('scale', 20);
  const server = await startBenchServer();
  const s3 = await startS3Server({ bucket: 'pgbb-bench' });
  Object.assign(process.env, s3.env);
  const repo = 's3://pgbb-bench/incremental';
  const rows: { what: string; stored: number; s: Sample }[] = [];
  // Not execFileSync: s3rver runs in this process and must keep answering.
  const stored = async (): Promise<number[]> =>
    (await promisify(execFile)(process.execPath, [CLI, 'list', repo, '--json'], { encoding: 'utf8' })).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).storedBytes as number);
  const backup = async (what: string, extra: string[]) => {
    log(`${what}…`);
    const s = await measure(process.execPath, [CLI, 'backup', '-d', server.conninfo, '-D', repo, '-c', 'fast', ...extra]);
    rows.push({ what, stored: (await stored()).at(-1)!, s });
  };
  try {
    await fill(server, scale, 0);
    await backup('full', []);
    const accounts = scale * 100_000;
    // A checkpoint, no VACUUM: what is measured is the change (and the hint bits its reads set), nothing else.
    await server.cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${accounts / 100}`);
    await server.cluster.query('CHECKPOINT');
    await backup('1% of rows, one range', ['--incremental-from', 'latest']);
    await server.cluster.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0');
    await server.cluster.query('CHECKPOINT');
    await backup('1% of rows, scattered', ['--incremental-from', 'latest']);
    await backup('no change', ['--incremental-from', 'latest']);
  } finally {
    await s3.stop();
    await server.cluster.destroy();
  }
  const full = rows[0].stored;
  console.log(`| backup | stored MB | of full | wall s | CPU s | peak RSS MB |\n|---|---|---|---|---|---|`);
  for (const { what, stored: n, s } of rows) {
    console.log(`| ${what} | ${(n / 1e6).toFixed(2)} | ${(n / full).toFixed(3)} | ${s.wall.toFixed(1)} | ${s.cpu.toFixed(2)} | ${(s.maxRssKb / 1024).toFixed(0)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
