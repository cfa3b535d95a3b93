/**
 * `--profile MODE`: one pgbb backup under `node --cpu-prof`, then the
 * functions with the most self time. Every thread that wrote a profile
 * (main thread, workers) is summarized on its own.
 */
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { pgbbCommand, type Mode, type Target } from './backup-modes';
import { log } from './bench-server';
import { summarize } from './cpu-profile';
import { markdownTable } from './markdown';
import { measure } from './measure';
import { fresh } from './scratch';

const TOP = 25;

/** keepIn: a directory to leave the .cpuprofile files in (for Chrome DevTools), else they are removed. */
export async function profileMode(mode: Mode, target: Omit<Target, 'dir'>, scratch: string, keepIn?: string): Promise<string> {
  const profDir = keepIn ? resolve(keepIn, mode.key) : join(scratch, `prof-${mode.key}`);
  await fs.mkdir(profDir, { recursive: true });
  log(`profiling pgbb ${mode.key}…`);
  const sample = await fresh(scratch, 'profiled-ts', (mapped) =>
    fresh(scratch, 'profiled', (dir) => {
      const t: Target = { ...target, dir, tablespace: target.tablespace && { ...target.tablespace, mapped } };
      return measure(...pgbbCommand(mode.pgbb(t), ['--cpu-prof', `--cpu-prof-dir=${profDir}`]));
    }),
  );
  const root = resolve(__dirname, '..', '..');
  const out: string[] = [
    `### profile: ${mode.label}`,
    '',
    `wall ${sample.wall.toFixed(2)} s, CPU ${sample.cpu.toFixed(2)} s (whole process, all threads), peak RSS ${(sample.maxRssKb / 1024).toFixed(0)} MB`,
  ];
  const files = (await fs.readdir(profDir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  for (const f of files) {
    const p = summarize(join(profDir, f), root);
    const pct = (ms: number) => `${((100 * ms) / p.totalMs).toFixed(1)}%`;
    out.push(
      '',
      `${f}: ${(p.totalMs / 1000).toFixed(2)} s of samples`,
      '',
      markdownTable(
        ['self ms', '%', 'function', 'where'],
        p.functions.slice(0, TOP).map((e) => [e.ms.toFixed(0), pct(e.ms), e.name, e.where]),
      ),
      '',
      markdownTable(['self ms', '%', 'script'], p.files.slice(0, 12).map((e) => [e.ms.toFixed(0), pct(e.ms), e.where])),
    );
  }
  if (!keepIn) await fs.rm(profDir, { recursive: true, force: true });
  else out.push('', `profiles kept in ${profDir}`);
  return out.join('\n');
}
