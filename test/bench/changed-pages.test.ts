import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { changedBytes, snapshot } from '../../bench/support/changed-pages';

const PAGE = 8192;
const pages = (...fills: number[]) => Buffer.concat(fills.map((f) => Buffer.alloc(PAGE, f)));

test('counts differing 8 KiB pages; new bytes against zeros; WAL and manifest apart; tablespaces followed', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-bench-changed-'));
  try {
    const dir = join(root, 'backup');
    const ts = join(root, 'ts');
    await fs.mkdir(join(dir, 'base/5'), { recursive: true });
    await fs.mkdir(join(dir, 'pg_wal'), { recursive: true });
    await fs.mkdir(join(dir, 'pg_tblspc'), { recursive: true });
    await fs.mkdir(join(ts, 'PG_15'), { recursive: true });
    await fs.symlink(ts, join(dir, 'pg_tblspc/16400'));
    await fs.writeFile(join(dir, 'base/5/same'), pages(1, 2, 3));
    await fs.writeFile(join(dir, 'base/5/one'), pages(1, 2, 3, 4));
    await fs.writeFile(join(dir, 'base/5/grows'), pages(1));
    await fs.writeFile(join(dir, 'base/5/gone'), pages(7, 7));
    await fs.writeFile(join(ts, 'PG_15/t'), pages(1, 1));
    await fs.writeFile(join(dir, 'backup_manifest'), 'old');
    const before = join(root, 'before');
    snapshot(dir, before);
    assert.ok((await fs.lstat(join(before, 'pg_tblspc/16400'))).isDirectory(), 'the copy holds the tablespace itself');

    await fs.writeFile(join(dir, 'base/5/one'), pages(1, 9, 3, 4)); // 1 page
    await fs.writeFile(join(dir, 'base/5/grows'), pages(1, 0, 5)); // zero page free, 1 page
    await fs.rm(join(dir, 'base/5/gone')); // nothing
    await fs.writeFile(join(dir, 'base/5/new'), Buffer.concat([pages(0, 0, 6), Buffer.alloc(100, 1)])); // 1 page + 100 bytes
    await fs.writeFile(join(ts, 'PG_15/t'), pages(1, 2)); // 1 page, through the link
    await fs.writeFile(join(dir, 'pg_wal/000000010000000000000002'), Buffer.concat([pages(3), Buffer.alloc(3 * PAGE)]));
    await fs.writeFile(join(dir, 'backup_manifest'), 'new!');

    const c = await changedBytes(before, dir);
    assert.equal(c.data, 4 * PAGE + 100);
    assert.equal(c.walMeta, PAGE + 4);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
