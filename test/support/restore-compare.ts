/**
 * Restores a backup with `pgbb restore` into a fresh directory beside it
 * (its manifest is checked on the way), starts the copy and compares its data
 * fingerprint; everything it made is removed again.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Cluster, dataFingerprint } from './cluster';
import { runPgbb } from './pgbb';

/** `root/ts` is where the backup's tablespace lives (the OLD side of -T). */
export async function restoreAndCompare(dir: string, root: string, fingerprint: string): Promise<void> {
  const target = join(root, `restored-${Date.now()}`);
  const r = await runPgbb(['restore', dir, '-D', target, '-N', '-T', `${join(root, 'ts')}=${target}-ts`]);
  assert.equal(r.code, 0, r.stderr);
  const restored = await Cluster.startExisting(target);
  try {
    assert.equal(await dataFingerprint(restored), fingerprint);
  } finally {
    await restored.destroy();
    await fs.rm(target, { recursive: true, force: true });
    await fs.rm(`${target}-ts`, { recursive: true, force: true });
  }
}

/** Starts the data directory `target` (a restored backup) and checks it holds `original`'s data; stops it again. */
export async function assertStartsLike(target: string, original: Cluster): Promise<void> {
  const copy = await Cluster.startExisting(target);
  try {
    assert.equal(await dataFingerprint(copy), await dataFingerprint(original));
  } finally {
    await copy.destroy();
  }
}
