import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError } from '../../../src/errors';
import { fsPath, pathFromBytes } from '../../../src/codec/path-bytes';
import { walkTree, type TreeEntry } from '../../../src/io/walk-tree';

function sandbox(): { outer: string; root: string } {
  const outer = mkdtempSync(join(tmpdir(), 'pgbb-walk-'));
  const root = join(outer, 'root');
  mkdirSync(root);
  return { outer, root };
}

async function all(it: AsyncIterable<TreeEntry>): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Settles within 2 s, or says it hung (a FIFO opened for reading blocks forever). */
function orHang<T>(p: Promise<T>): Promise<T | 'hung'> {
  return Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 2000).unref())]);
}

test('depth first, pre-order, sorted by bytes; every entry lstat-ed', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(root, 'b/c'), { recursive: true });
    writeFileSync(join(root, 'b/c/f'), 'xyz');
    writeFileSync(join(root, 'a'), '');
    writeFileSync(join(root, 'B'), '');
    const es = await all(walkTree(root));
    assert.deepEqual(es.map((e) => `${e.kind} ${e.rel}`), ['file B', 'file a', 'directory b', 'directory b/c', 'file b/c/f']);
    assert.equal(es[4].abs, join(root, 'b/c/f'));
    assert.equal(es[4].stats!.size, 3n);
    assert.equal(typeof es[4].stats!.ctimeNs, 'bigint');
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('links are entries, never followed; FIFOs are "other", never opened (the walk does not hang)', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(outer, 'elsewhere'));
    writeFileSync(join(outer, 'elsewhere/secret'), 'x');
    execFileSync('mkfifo', [join(outer, 'elsewhere/pipe')]);
    symlinkSync(join(outer, 'elsewhere'), join(root, 'dirlink'));
    symlinkSync('../elsewhere/pipe', join(root, 'pipelink'));
    symlinkSync('/nonexistent/at/all', join(root, 'dangling'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
    for (const stat of [true, false]) {
      const es = await orHang(all(walkTree(root, { stat })));
      assert.notEqual(es, 'hung');
      assert.deepEqual(
        (es as TreeEntry[]).map((e) => `${e.kind} ${e.rel}`),
        ['symlink dangling', 'symlink dirlink', 'other fifo', 'symlink pipelink'],
        `stat: ${stat}`,
      );
      assert.equal((es as TreeEntry[])[0].stats === undefined, !stat);
    }
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('a name that is not UTF-8 is walked under its own bytes', async () => {
  const { outer, root } = sandbox();
  try {
    const raw = Buffer.from([0x66, 0xff, 0x2e, 0x31]); // "f\xff.1"
    writeFileSync(Buffer.concat([Buffer.from(`${root}/`), raw]), 'data');
    const [e] = await all(walkTree(root));
    assert.equal(e.rel, pathFromBytes(raw));
    assert.deepEqual(fsPath(e.abs), Buffer.concat([Buffer.from(`${root}/`), raw]));
    assert.equal(e.kind, 'file');
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('skip leaves out an entry and its subtree; descend false yields a directory without entering it', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(root, 'keep/in'), { recursive: true });
    mkdirSync(join(root, 'skip/in'), { recursive: true });
    mkdirSync(join(root, 'shallow/in'), { recursive: true });
    const es = await all(walkTree(root, { skip: (e) => e.rel === 'skip', descend: (e) => e.rel !== 'shallow' }));
    assert.deepEqual(es.map((e) => e.rel), ['keep', 'keep/in', 'shallow']);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('lazy: a directory is read only when the walk reaches it, after its entry was taken', async () => {
  const { outer, root } = sandbox();
  try {
    mkdirSync(join(root, 'd'));
    const it = walkTree(root);
    const first = await it.next();
    assert.equal((first.value as TreeEntry).rel, 'd');
    writeFileSync(join(root, 'd/late'), ''); // made after the entry was yielded: still seen
    assert.equal(((await it.next()).value as TreeEntry).rel, 'd/late');
    assert.equal((await it.next()).done, true);
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test('an unreadable root is one IoError naming it', async () => {
  const { outer, root } = sandbox();
  try {
    await assert.rejects(all(walkTree(join(root, 'missing'))), (e: unknown) => e instanceof IoError && e.message.startsWith(`could not read directory "${join(root, 'missing')}"`));
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});
