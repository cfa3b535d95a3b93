import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError } from '../../../src/errors';
import { readLimited, readLimitedPieces, readLimitedSync } from '../../../src/io/read-limited';

const limits = { maxBytes: 100, what: 'test file' };

test('a regular file within the cap is read whole; a missing one is null', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-rl-'));
  try {
    writeFileSync(join(dir, 'f'), 'x'.repeat(100));
    assert.equal((await readLimited(join(dir, 'f'), limits))!.toString(), 'x'.repeat(100));
    assert.equal(readLimitedSync(join(dir, 'f'), limits)!.length, 100);
    assert.equal(await readLimited(join(dir, 'missing'), limits), null);
    assert.equal(readLimitedSync(join(dir, 'missing'), limits), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('over the cap, a symlink, a FIFO, a directory and a device are refused at once, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-rl-'));
  try {
    writeFileSync(join(dir, 'big'), 'x'.repeat(101));
    writeFileSync(join(dir, 'real'), 'ok');
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'big'), /larger than 100 bytes/],
      [join(dir, 'link'), /symbolic link/],
      [join(dir, 'fifo'), /is a FIFO/],
      [dir, /is a directory/],
      ['/dev/zero', /is a device/],
    ];
    for (const [file, why] of cases) {
      const began = Date.now();
      await assert.rejects(readLimited(file, limits), (e: unknown) => e instanceof IoError && why.test(e.message) && e.message.includes(file), file);
      assert.throws(() => readLimitedSync(file, limits), (e: unknown) => e instanceof IoError && why.test(e.message), file);
      assert.ok(Date.now() - began < 2000, `${file} answered at once`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function pieces(file: string, pieceBytes: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const p of readLimitedPieces(file, limits, pieceBytes)) out.push(p);
  return out;
}

test('readLimitedPieces: the file in pieces of at most the size asked, nothing for a missing one; refused as readLimited refuses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-rl-'));
  try {
    writeFileSync(join(dir, 'f'), 'abcdefghij'.repeat(10));
    const got = await pieces(join(dir, 'f'), 32);
    assert.deepEqual(got.map((p) => p.length), [32, 32, 32, 4]);
    assert.equal(Buffer.concat(got).toString(), 'abcdefghij'.repeat(10));
    assert.deepEqual(await pieces(join(dir, 'missing'), 32), []);
    writeFileSync(join(dir, 'big'), 'x'.repeat(101));
    symlinkSync(join(dir, 'f'), join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    for (const [file, why] of [[join(dir, 'big'), /larger than 100 bytes/], [join(dir, 'link'), /symbolic link/], [join(dir, 'fifo'), /is a FIFO/]] as const) {
      await assert.rejects(pieces(file, 32), (e: unknown) => e instanceof IoError && why.test(e.message) && e.message.includes(file), file);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
