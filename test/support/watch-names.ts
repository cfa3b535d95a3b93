/**
 * Every name that appears under a directory (one level, and one below) while
 * a promise is pending, polled: how the spool tests see temporary files that
 * exist only for a moment.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export async function watchNames<T>(dir: string, until: Promise<T>, everyMs: number): Promise<{ result: T; seen: Set<string> }> {
  const seen = new Set<string>();
  let done = false;
  const loop = (async () => {
    while (!done) {
      for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
        seen.add(n);
        for (const m of await fs.readdir(join(dir, n)).catch(() => [] as string[])) seen.add(`${n}/${m}`);
      }
      await sleep(everyMs);
    }
  })();
  const result = await until.finally(() => (done = true));
  await loop;
  return { result, seen };
}
