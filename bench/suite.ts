/**
 * `npm run bench`: pgbb against pg_basebackup on one real server, the five
 * modes of issue 16 in alternating pairs, then refresh after four kinds of
 * change; prints the tables and writes them with a chart to bench/results/.
 *
 *   node dist/bench/suite.js [--scale 150] [--files 0] [--runs 5] [--modes stdout,tar,...]
 *                            [--no-tablespace] [--skip-refresh] [--no-sync] [--profile MODE[,MODE]]
 *                            [--profile-dir DIR]
 *                            [--out DIR]
 *
 * See bench/README.md for what each column means and how it is measured.
 */
import { rmSync, promises as fs } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { makeTempDir } from '../test/support/cluster';
import { arg, flag, numArg, onlyKnown } from './support/args';
import { MODES, PG_BASEBACKUP, pgbbCommand, type Mode, type Target } from './support/backup-modes';
import { addTablespace, databaseBytes, fill, log, startBenchServer, type BenchServer } from './support/bench-server';
import { measure, type Sample } from './support/measure';
import { profileMode } from './support/profile-run';
import { refreshRounds, type RefreshReport } from './support/refresh-rounds';
import { backupTable, fullLine, medians, refreshTable, type ModeResult } from './support/report';
import { fresh } from './support/scratch';
import { barChart } from './support/svg-chart';

interface Options {
  scale: number;
  files: number;
  runs: number;
  modes: Mode[];
  tablespace: boolean;
  refresh: boolean;
  sync: boolean;
  profile: Mode[];
  profileDir?: string;
  out: string;
}

function pickModes(list: string): Mode[] {
  return list.split(',').filter(Boolean).map((k) => {
    const m = MODES.find((x) => x.key === k);
    if (!m) throw new Error(`unknown mode ${k} (known: ${MODES.map((x) => x.key).join(', ')})`);
    return m;
  });
}

const KNOWN = ['scale', 'files', 'runs', 'modes', 'no-tablespace', 'skip-refresh', 'no-sync', 'profile', 'profile-dir', 'out'];

function options(): Options {
  onlyKnown(KNOWN);
  return {
    scale: numArg('scale', 150),
    files: numArg('files', 0),
    runs: Math.max(1, numArg('runs', 5)),
    modes: pickModes(arg('modes', MODES.map((m) => m.key).join(','))),
    tablespace: !flag('no-tablespace'),
    refresh: !flag('skip-refresh'),
    sync: !flag('no-sync'),
    profile: pickModes(arg('profile', '')),
    profileDir: arg('profile-dir', '') || undefined,
    out: arg('out', join(__dirname, '..', '..', 'bench', 'results')),
  };
}

/** One measured backup into a fresh directory (and a fresh tablespace target), or to /dev/null. */
function once(who: 'pgbb' | 'pg', mode: Mode, t: Omit<Target, 'dir'>, scratch: string): Promise<Sample> {
  return fresh(scratch, `${who}-ts`, (mapped) =>
    fresh(scratch, who, (dir) => {
      const target: Target = { ...t, dir, tablespace: t.tablespace && { ...t.tablespace, mapped } };
      const [cmd, args] = who === 'pgbb' ? pgbbCommand(mode.pgbb(target)) : [PG_BASEBACKUP, mode.pgBasebackup(target)];
      return measure(cmd, args);
    }),
  );
}

/** runs pairs; the order inside a pair alternates so that neither tool always follows the other. */
async function pairs(mode: Mode, t: Omit<Target, 'dir'>, runs: number, scratch: string): Promise<ModeResult> {
  const r: ModeResult = { mode, pgbb: [], pgBasebackup: [] };
  for (let i = 0; i < runs; i++) {
    log(`${mode.key} ${i + 1}/${runs}…`);
    const order = i % 2 === 0 ? (['pgbb', 'pg'] as const) : (['pg', 'pgbb'] as const);
    for (const who of order) (who === 'pgbb' ? r.pgbb : r.pgBasebackup).push(await once(who, mode, t, scratch));
  }
  return r;
}

async function main(): Promise<void> {
  const o = options();
  const scratch = await makeTempDir('pgbb-bench-');
  // The server is the harness's to stop (reaper.ts); the backups are ours to remove.
  const onSignal = () => {
    rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  let server: BenchServer | undefined;
  try {
    server = await startBenchServer();
    await fill(server, o.scale, o.files);
    const base = { conninfo: server.conninfo };
    const results: ModeResult[] = [];
    // pg_basebackup refuses to write more than one tablespace to stdout: that row runs before there is one.
    const beforeTs = o.modes.filter((m) => m.stdout);
    for (const m of beforeTs) results.push(await pairs(m, base, o.runs, scratch));
    const sizeNoTs = await databaseBytes(server);
    const location = o.tablespace ? await addTablespace(server) : undefined;
    const t = { ...base, tablespace: location ? { location, mapped: '' } : undefined };
    if (o.profile.length) {
      for (const m of o.profile) console.log(`${await profileMode(m, m.stdout ? base : t, scratch, o.profileDir)}\n`);
      return;
    }
    for (const m of o.modes.filter((x) => !x.stdout)) results.push(await pairs(m, t, o.runs, scratch));
    const refresh = o.refresh ? await refreshRounds(server, o.scale, scratch, { sync: o.sync, tablespace: location }) : undefined;
    await writeResults(o, results, refresh, { size: await databaseBytes(server), sizeNoTs });
  } finally {
    await server?.cluster.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function writeResults(o: Options, results: ModeResult[], refresh: RefreshReport | undefined, db: { size: number; sizeNoTs: number }): Promise<void> {
  const date = new Date().toISOString().slice(0, 10);
  const name = `${date}-${o.scale}${o.files ? `-files${o.files}` : ''}`;
  const setup =
    `PostgreSQL 15, pgbench scale ${o.scale}${o.files ? ` + ${o.files} one-row tables` : ''}, ` +
    `${(db.size / 1e9).toFixed(2)} GB${o.tablespace ? ` (${(db.sizeNoTs / 1e9).toFixed(2)} GB before the tablespace copy)` : ''}, ` +
    `${o.runs} alternating pair(s), medians, \`-c fast\`; ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
    `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end, node ${process.version}`;
  const busy = loadavg()[0] > cpus().length;
  const parts = [`# pgbb bench ${name}`, '', setup, ''];
  if (busy) parts.push(`**The machine was busy** (load ${loadavg()[0].toFixed(1)} on ${cpus().length} cores): these numbers are noisy.`, '');
  if (results.length) parts.push(backupTable(results), '', `![wall time per mode](${name}.svg)`, '');
  if (refresh) parts.push(`Refresh (${o.sync ? 'fsync' : '-N'}); ${fullLine(refresh)}`, '', refreshTable(refresh), '');
  parts.push('Columns and how they are measured: bench/README.md.', '');
  const md = parts.join('\n');
  console.log(md);
  await fs.mkdir(o.out, { recursive: true });
  await fs.writeFile(join(o.out, `${name}.md`), md);
  if (results.length) {
    const rows = results.map((r) => ({ label: r.mode.label, pgbb: medians(r.pgbb).wall, pgBasebackup: medians(r.pgBasebackup).wall }));
    await fs.writeFile(join(o.out, `${name}.svg`), barChart(`pgbb vs pg_basebackup, pgbench scale ${o.scale}${o.files ? `, ${o.files} files` : ''}`, rows));
  }
  log(`wrote ${join(o.out, name)}.md${results.length ? ' and .svg' : ''}`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
