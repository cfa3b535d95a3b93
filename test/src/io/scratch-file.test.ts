/**
 * ScratchFile (src/io/scratch-file.ts): bytes come back as appended; the
 * file never appears in its directory (unlinked at open) and is created
 * without following a planted link; nothing is created until the first
 * append; reads outside what was written, growth past the limit and use
 * after close are refused with one clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScratchFile } from '../../../src/io/scratch-file';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-scratch-test-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bytes read back as appended, at the offsets append returned; the file is never visible', () => {
  withDir((dir) => {
    const s = new ScratchFile('test bytes', 1 << 30, dir);
    assert.equal(s.size, 0);
    const a = Buffer.alloc(300_000, 1);
    const b = Buffer.from('second');
    const atA = s.append(a);
    assert.deepEqual(readdirSync(dir), [], 'unlinked as soon as it is open');
    const atB = s.append(b);
    assert.deepEqual([atA, atB, s.size], [0, a.length, a.length + b.length]);
    assert.ok(s.read(atB, b.length).equals(b));
    assert.ok(s.read(atA, a.length).equals(a));
    assert.ok(s.read(atA + 299_998, 4).equals(Buffer.from([1, 1, 0x73, 0x65])));
    s.close();
    s.close(); // idempotent
  });
});

test('nothing is created before the first append; close without one is fine', () => {
  withDir((dir) => {
    const s = new ScratchFile('test bytes', 1 << 30, dir);
    assert.deepEqual(readdirSync(dir), []);
    s.close();
    assert.throws(() => s.append(Buffer.from('x')), /temporary file for test bytes was already released/);
  });
});

test('reads outside what was appended, and hostile offsets, are refused', () => {
  withDir((dir) => {
    const s = new ScratchFile('test bytes', 1 << 30, dir);
    s.append(Buffer.alloc(100));
    for (const [at, n] of [[0, 101], [99, 2], [-1, 1], [0, -1], [1.5, 1], [Number.MAX_SAFE_INTEGER, 1], [NaN, 1]]) {
      assert.throws(() => s.read(at!, n!), /outside the temporary file for test bytes \(100 bytes\)/, `${at}, ${n}`);
    }
    assert.equal(s.read(100, 0).length, 0);
    s.close();
    assert.throws(() => s.read(0, 1), /already released/);
  });
});

test('growth past maxBytes is refused before anything is written', () => {
  withDir((dir) => {
    const s = new ScratchFile('test bytes', 1000, dir);
    s.append(Buffer.alloc(600));
    assert.throws(() => s.append(Buffer.alloc(401)), /temporary file for test bytes would grow past 1000 bytes/);
    assert.equal(s.size, 600);
    s.append(Buffer.alloc(400));
    s.close();
  });
});

test('a directory it cannot create in gives one clear error naming the file', () => {
  withDir((dir) => {
    const missing = join(dir, 'no-such-dir');
    const s = new ScratchFile('test bytes', 1000, missing);
    assert.throws(() => s.append(Buffer.from('x')), (err: Error) => /could not create a temporary file for test bytes ".*no-such-dir\/pgbb-scratch-/.test(err.message));
    // A link planted where it points elsewhere is not followed (names are random, so plant a dangling-dir case: the target stays untouched).
    const target = join(dir, 'victim');
    writeFileSync(target, 'keep');
    symlinkSync(target, join(dir, 'link'));
    const t = new ScratchFile('test bytes', 1000, dir);
    t.append(Buffer.from('x'));
    t.close();
    assert.equal(readFileSync(target, 'utf8'), 'keep');
    assert.deepEqual(readdirSync(dir).sort(), ['link', 'victim']);
  });
});
