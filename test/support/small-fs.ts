/**
 * A small filesystem mounted for a test that fills a disk.
 *
 *   const fsys = await mountSmallFs(dir, 8);   // 8 MiB at dir (which must exist, empty)
 *   try { … } finally { await fsys.unmount(); }
 *
 * Tries, in order (or only those named in `kinds`):
 *   tmpfs   mount -t tmpfs -o size=…                  (root; what CI does: .ci/run runs as root)
 *   ext2    an image file beside `dir` (truncate, mkfs.ext2 -m 0), mount -o loop
 *           (where tmpfs mounts are refused but loop devices are there)
 * Out: { kind, unmount }. The mount starts empty (ext2's lost+found is
 *      removed), so a test can assert that nothing is left on it. unmount
 *      unmounts (lazily if busy; the loop device is freed by mount's
 *      autoclear) and removes the image.
 * Errors: never a skip — when no way works, one Error saying what each
 *      attempt answered and what is needed (root, or CAP_SYS_ADMIN with
 *      loop devices), so a test that needs a full disk fails loudly.
 */
import { promises as fs } from 'node:fs';
import { run } from './run';

export type SmallFsKind = 'tmpfs' | 'ext2';

export interface SmallFs {
  kind: SmallFsKind;
  unmount(): Promise<void>;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function unmount(dir: string): Promise<void> {
  await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
}

export async function mountSmallFs(dir: string, mib: number, kinds: readonly SmallFsKind[] = ['tmpfs', 'ext2']): Promise<SmallFs> {
  const tried: string[] = [];
  for (const kind of kinds) {
    const image = `${dir}.img`;
    try {
      if (kind === 'tmpfs') {
        await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'tmpfs', dir]);
        return { kind, unmount: () => unmount(dir) };
      }
      await run('truncate', ['-s', `${mib}M`, image]);
      // -m 0: no blocks reserved for root, so "full" means full for whoever writes.
      await run('mkfs.ext2', ['-q', '-F', '-m', '0', image]);
      await run('mount', ['-o', 'loop', image, dir]);
      await fs.rmdir(`${dir}/lost+found`);
      return {
        kind,
        unmount: async () => {
          await unmount(dir);
          await fs.rm(image, { force: true });
        },
      };
    } catch (err) {
      tried.push(`${kind}: ${firstLine(err)}`);
      if (kind === 'ext2') {
        await run('umount', [dir]).catch(() => {});
        await fs.rm(image, { force: true });
      }
    }
  }
  throw new Error(`cannot mount a filesystem of ${mib} MiB at ${dir} to fill (needs root, or CAP_SYS_ADMIN and loop devices): ${tried.join('; ')}`);
}
