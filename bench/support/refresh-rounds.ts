/**
 * Refresh after each of issue 16's four changes to pgbench_accounts, one
 * after the other on one plain backup (each round refreshes the previous
 * round's result), against a full pgbb backup of the same server.
 *
 * Per round: a copy of the backup (snapshot), `pgbb refresh -D DIR`
 * measured (wall, bytes the kernel counted as written by pgbb), then what
 * differs between the copy and the result (changed-pages.ts).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pgbbCommand } from './backup-modes';
import { log, type BenchServer } from './bench-server';
import { changedBytes, snapshot, type Changed } from './changed-pages';
import { measure, type Sample } from './measure';

export interface RefreshRound {
  change: string;
  sample: Sample;
  changed: Changed;
  /** bytesWritten from pgbb's own --json result line. */
  reported: number;
}

export interface RefreshReport {
  full: Sample;
  rounds: RefreshRound[];
}

export function changes(scale: number): Array<[string, string | null]> {
  const rows = scale * 100_000;
  const n = Math.round(rows / 100);
  const from = Math.round(rows / 3);
  return [
    ['none', null],
    ['1% of rows, clustered', `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN ${from} AND ${from + n - 1}`],
    ['0.5% of rows, every 200th', 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 200 = 0'],
    [
      '1% of rows at random',
      `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid IN ` +
        `(SELECT (random() * ${rows - 1})::int + 1 FROM generate_series(1, ${n}))`,
    ],
  ];
}

export async function refreshRounds(
  s: BenchServer,
  scale: number,
  scratch: string,
  opts: { sync: boolean; tablespace?: string },
): Promise<RefreshReport> {
  const dir = join(scratch, 'refresh');
  const ts = join(scratch, 'refresh-ts');
  const before = join(scratch, 'refresh-before');
  const noSync = opts.sync ? [] : ['-N'];
  const mapping = opts.tablespace ? ['-T', `${opts.tablespace}=${ts}`] : [];
  log('refresh: full backup…');
  const full = await measure(...pgbbCommand(['backup', '-d', s.conninfo, '-c', 'fast', '-D', dir, ...noSync, ...mapping]));
  const rounds: RefreshRound[] = [];
  try {
    for (const [change, sql] of changes(scale)) {
      log(`refresh after: ${change}…`);
      if (sql) await s.cluster.query(sql);
      snapshot(dir, before);
      const sample = await measure(...pgbbCommand(['refresh', '-d', s.conninfo, '-c', 'fast', '-D', dir, '--json', ...noSync]));
      const line = sample.stderr.split('\n').find((l) => l.includes('"event":"result"'));
      const reported = line ? Number(JSON.parse(line).bytesWritten) : NaN;
      const changed = await changedBytes(before, dir);
      await fs.rm(before, { recursive: true, force: true });
      rounds.push({ change, sample, changed, reported });
    }
  } finally {
    for (const d of [dir, ts, before]) await fs.rm(d, { recursive: true, force: true });
  }
  return { full, rounds };
}
