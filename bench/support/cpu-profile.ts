/**
 * Self time per function from a V8 .cpuprofile (what `node --cpu-prof`
 * writes): each sample's interval (the time delta to the next sample) goes
 * to the node it hit; nodes are summed by function name + url:line, so the
 * same function reached through different callers counts once.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: SelfTime[];
  /** Self time per script (url), for "which module costs what". */
  files: Array<{ where: string; ms: number }>;
}

function shortUrl(url: string, root: string): string {
  const path = url.replace(/^file:\/\//, '');
  return path.startsWith(root) ? path.slice(root.length).replace(/^\//, '') : path;
}

export function summarize(profilePath: string, root: string): ProfileSummary {
  const p = JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fns = new Map<string, SelfTime>();
  const files = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i + 1] ?? 0;
    const node = byId.get(p.samples[i]);
    if (!node) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${shortUrl(url, root)}:${lineNumber + 1}` : '';
    const name = functionName || '(anonymous)';
    const key = `${name}\0${where}`;
    const e = fns.get(key) ?? { name, where, ms: 0 };
    e.ms += us / 1000;
    fns.set(key, e);
    const file = url ? shortUrl(url, root) : name;
    files.set(file, (files.get(file) ?? 0) + us / 1000);
  }
  return {
    totalMs: totalUs / 1000,
    functions: [...fns.values()].sort((a, b) => b.ms - a.ms),
    files: [...files].map(([where, ms]) => ({ where, ms })).sort((a, b) => b.ms - a.ms),
  };
}
