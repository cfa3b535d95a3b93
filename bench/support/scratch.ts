/** Directories the bench writes backups into, and their sizes. */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/** Runs fn on an empty scratch/name (also empty afterwards): each backup starts from nothing. */
export async function fresh<T>(scratch: string, name: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(scratch, name);
  await fs.rm(dir, { recursive: true, force: true });
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Apparent size in bytes (du -sb), following nothing. */
export function du(dir: string): number {
  return Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

/** Flush the page cache's dirty pages, so that no run pays for the previous one's writes. */
export function syncAll(): void {
  spawnSync('sync');
}
