/**
 * Peak memory of `pgbb backup` (plain format) against the number of files
 * the server lists: the goal is memory flat in file count — a backup of
 * 100,000 small files within 10% of a 1,000-file one's peak RSS.
 *
 *   node dist/bench/many-files.js [--small 1000] [--large 100000] [--runs 1] [--size 64] [--cli dist/src/cli.js] [--args '--no-manifest'] [--stdout]
 *                                 [--then verify,restore]
 *
 * Starts a PostgreSQL 15 in a temp directory (test/support/cluster.ts) and
 * adds small files (--size bytes each, 1,000 per directory) under
 * `pgbb_bench/` in its data directory: BASE_BACKUP sends every file there,
 * and the manifest lists each, as it would many small relations, without
 * the minutes 100,000 CREATE TABLEs take. For each count: a fast-checkpoint
 * plain backup with the CLI (dist/src/cli.js, WAL streamed, -N), its wall
 * time and the pgbb process's peak RSS (bench/support/measure.ts: GNU
 * time's maximum for the process tree). Prints both and the ratio.
 * --cli runs another build of pgbb (e.g. one of an older commit), to compare;
 * --args adds options to each backup (e.g. --no-manifest, to see what the manifest costs;
 * -F t for tar files); --stdout backs up to `-D -` (the tar stream is discarded).
 * --then verify,restore also measures `pgbb verify` and `pgbb restore` of each
 * count's (last) backup. The CLI is run as the executable it is installed as
 * (its shebang's Node options apply, as they do for a user).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Cluster, chownToPostgres, makeTempDir } from '../test/support/cluster';
import { PGBB_CLI } from '../test/support/pgbb';
import { arg } from './support/args';
import { measure, type Sample } from './support/measure';

const PER_DIR = 1000;

/** Makes `pgbb_bench/` hold `count` files of `size` bytes (adding to what is there). */
async function fillTo(dataDir: string, count: number, size: number, have: number): Promise<void> {
  const root = join(dataDir, 'pgbb_bench');
  const body = Buffer.alloc(size, 0x61);
  for (let i = have; i < count; i++) {
    const dir = join(root, String(Math.floor(i / PER_DIR)).padStart(4, '0'));
    if (i % PER_DIR === 0 || i === have) await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(join(dir, `f${i}`), body);
  }
  await chownToPostgres(root);
}

async function main(): Promise<void> {
  const small = Number(arg('small', '1000'));
  const large = Number(arg('large', '100000'));
  const runs = Number(arg('runs', '1'));
  const size = Number(arg('size', '64'));
  const cli = arg('cli', PGBB_CLI);
  const extra = arg('args', '').split(' ').filter(Boolean);
  const toStdout = process.argv.includes('--stdout');
  const scratch = await makeTempDir('pgbb-bench-files-');
  const cluster = await Cluster.create({ conf: { fsync: false } });
  try {
    const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres`;
    const then = arg('then', '').split(',').filter(Boolean);
    for (const c of then) if (c !== 'verify' && c !== 'restore') throw new Error(`--then: "${c}" is not verify or restore`);
    const rows: Array<{ files: number; what: string; s: Sample }> = [];
    const smallest = (samples: Sample[]) => samples.reduce((a, b) => (b.maxRssKb < a.maxRssKb ? b : a));
    let have = 0;
    for (const files of [small, large]) {
      process.stderr.write(`adding files up to ${files}…\n`);
      await fillTo(cluster.dataDir, files, size, have);
      have = files;
      const samples: Sample[] = [];
      const target = join(scratch, `b${files}`);
      for (let r = 0; r < runs; r++) {
        await fs.rm(target, { recursive: true, force: true });
        samples.push(await measure(cli, ['backup', '-d', conninfo, '-c', 'fast', '-N', ...extra, '-D', toStdout ? '-' : target]));
      }
      // The smallest peak of the runs: the least disturbed by the machine's other load.
      rows.push({ files, what: 'backup', s: smallest(samples) });
      for (const c of toStdout ? [] : then) {
        const args = c === 'verify' ? ['verify', target] : ['restore', target, '-D', join(scratch, 'restored')];
        const runsOf: Sample[] = [];
        for (let r = 0; r < runs; r++) {
          await fs.rm(join(scratch, 'restored'), { recursive: true, force: true });
          runsOf.push(await measure(cli, args));
        }
        rows.push({ files, what: c, s: smallest(runsOf) });
      }
      await fs.rm(target, { recursive: true, force: true });
      await fs.rm(join(scratch, 'restored'), { recursive: true, force: true });
    }
    console.log('command   files added   wall time   peak RSS (pgbb)');
    for (const { files, what, s } of rows) {
      console.log(`${what.padEnd(7)}   ${String(files).padStart(11)}   ${s.wall.toFixed(1).padStart(7)} s   ${(s.maxRssKb / 1024).toFixed(1).padStart(8)} MB`);
    }
    for (const what of ['backup', ...then]) {
      const [a, b] = [small, large].map((n) => rows.find((r) => r.files === n && r.what === what));
      if (a && b) console.log(`${what}: peak RSS ${large} / ${small} files: ${(b.s.maxRssKb / a.s.maxRssKb).toFixed(3)}× (target: within 1.10×)`);
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
