/**
 * mountSmallFs (./small-fs.ts), each way on its own: the mount fills up with
 * ENOSPC at about its size, starts empty, and is gone after unmount — so the
 * disk-full test (test/integration/failures.test.ts) really fills a disk,
 * whichever way this machine allows.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeTempDir } from './run';
import { mountSmallFs } from './small-fs';

for (const kind of ['tmpfs', 'ext2'] as const) {
  test(`mountSmallFs ${kind}: 4 MiB that fill with ENOSPC, empty at first, unmounted after`, async () => {
    const root = await makeTempDir('pgbb-smallfs-');
    const dir = join(root, 'mnt');
    await fs.mkdir(dir);
    try {
      const m = await mountSmallFs(dir, 4, [kind]);
      try {
        assert.equal(m.kind, kind);
        assert.deepEqual(await fs.readdir(dir), []);
        const f = await fs.open(join(dir, 'filler'), 'wx');
        let written = 0;
        const err = await (async () => {
          const block = Buffer.alloc(64 * 1024, 1);
          for (;;) written += (await f.write(block)).bytesWritten;
        })().catch((e: NodeJS.ErrnoException) => e);
        await f.close();
        assert.equal(err.code, 'ENOSPC', String(err));
        assert.ok(written > 2 * 1024 * 1024 && written <= 4 * 1024 * 1024, `wrote ${written} bytes before ENOSPC`);
      } finally {
        await m.unmount();
      }
      assert.deepEqual(await fs.readdir(dir), [], 'the filler went with the filesystem');
      assert.deepEqual(await fs.readdir(root), ['mnt'], 'no image left beside it');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
}
