/** The two result tables, as Markdown, from the measured samples. */
import type { Mode } from './backup-modes';
import { markdownTable } from './markdown';
import type { Sample } from './measure';
import type { RefreshReport } from './refresh-rounds';
import { mbFromKb, median, mib, ratio, seconds } from './stats';

export interface ModeResult {
  mode: Mode;
  pgbb: Sample[];
  pgBasebackup: Sample[];
}

export interface Medians {
  wall: number;
  cpu: number;
  rssKb: number;
}

export function medians(xs: Sample[]): Medians {
  return { wall: median(xs.map((s) => s.wall)), cpu: median(xs.map((s) => s.cpu)), rssKb: median(xs.map((s) => s.maxRssKb)) };
}

export function backupTable(results: ModeResult[]): string {
  return markdownTable(
    ['mode', 'pgbb wall', 'pg_basebackup wall', 'ratio', 'pgbb CPU', 'pgbb RSS', 'pg_basebackup CPU', 'pg_basebackup RSS'],
    results.map((r) => {
      const a = medians(r.pgbb);
      const b = medians(r.pgBasebackup);
      return [r.mode.label, seconds(a.wall), seconds(b.wall), ratio(a.wall, b.wall), seconds(a.cpu), mbFromKb(a.rssKb), seconds(b.cpu), mbFromKb(b.rssKb)];
    }),
  );
}

export function refreshTable(r: RefreshReport): string {
  return markdownTable(
    ['change', 'refresh wall', 'refresh/full', 'written', 'changed', 'of which WAL+meta', 'written/changed', 'pgbb says written', 'refresh CPU', 'refresh RSS'],
    r.rounds.map((x) => {
      const changed = x.changed.data + x.changed.walMeta;
      return [
        x.change,
        seconds(x.sample.wall),
        ratio(x.sample.wall, r.full.wall),
        mib(x.sample.writeBytes),
        mib(changed),
        mib(x.changed.walMeta),
        changed > 0 ? (x.sample.writeBytes / changed).toFixed(2) : '–',
        mib(x.reported),
        seconds(x.sample.cpu),
        mbFromKb(x.sample.maxRssKb),
      ];
    }),
  );
}

export function fullLine(r: RefreshReport): string {
  return `full pgbb backup of the same state: ${seconds(r.full.wall)}, wrote ${mib(r.full.writeBytes)}, CPU ${seconds(r.full.cpu)}, peak RSS ${mbFromKb(r.full.maxRssKb)}`;
}
