/**
 * What a refresh had to change: the bytes of a plain backup that differ
 * between a copy taken before it and the directory after it, in whole
 * 8 KiB pages. What was not there before (a new file, a file's new tail)
 * compares against zeros: an all-zero page need not be written (a file
 * extended by ftruncate reads as zeros), so it counts only when it replaced
 * other bytes. A removed file counts nothing.
 *
 * Two sums:
 *   data     every file outside pg_wal/, except backup_manifest
 *            (relation files, backup_label, config files, tablespaces)
 *   walMeta  pg_wal/ (WAL segments, pgbb.chunkmap, …) and backup_manifest:
 *            what every refresh writes even when no page changed.
 * Tablespaces are followed through pg_tblspc's links on both sides.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

const PAGE = 8192;

/** cp -a with links dereferenced: the copy holds the tablespaces' files, not links to the live ones. */
export function snapshot(dir: string, to: string): void {
  const r = spawnSync('cp', ['-aL', dir, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -aL ${dir} ${to} failed: ${r.stderr}`);
}

/** Regular files under root by relative path → size; symlinks to directories are walked into. */
async function files(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (rel: string) => {
    for (const name of await fs.readdir(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await fs.stat(join(root, r));
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) out.set(r, st.size);
    }
  };
  await walk('');
  return out;
}

export interface Changed {
  data: number;
  walMeta: number;
}

export const isWalOrMeta = (rel: string): boolean => rel.startsWith('pg_wal/') || rel === 'backup_manifest';

export async function changedBytes(before: string, after: string): Promise<Changed> {
  const a = await files(before);
  const b = await files(after);
  const bufA = Buffer.alloc(1 << 20);
  const bufB = Buffer.alloc(1 << 20);
  const sum: Changed = { data: 0, walMeta: 0 };
  for (const [rel, size] of b) {
    const key = isWalOrMeta(rel) ? 'walMeta' : 'data';
    const fa = a.has(rel) ? await fs.open(join(before, rel), 'r') : null;
    const fb = await fs.open(join(after, rel), 'r');
    try {
      for (let off = 0; off < size; off += bufB.length) {
        const n = (await fb.read(bufB, 0, bufB.length, off)).bytesRead;
        const m = fa ? (await fa.read(bufA, 0, n, off)).bytesRead : 0;
        bufA.fill(0, m, n);
        for (let p = 0; p < n; p += PAGE) {
          const end = Math.min(p + PAGE, n);
          if (bufA.compare(bufB, p, end, p, end) !== 0) sum[key] += end - p;
        }
      }
    } finally {
      await fa?.close();
      await fb.close();
    }
  }
  return sum;
}
