/**
 * PageDiffWriter (the refresh sink's in-place writes): of the data it is
 * given, only the 8 KiB pages that differ from the file are written,
 * whatever the split of the data; the journal hook runs once, before the
 * first byte changes, and never when nothing differs; bytes past the
 * file's end are written, also when the file shrank after it was opened.
 * The same with O_DIRECT (where /tmp allows it, the default) and without.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PageDiffWriter, PAGE_SIZE } from '../../sinks/refresh-page-writer';
import { bytes } from '../support/chunk-fixtures';
import { retain, slabEvents, SlabReader } from '../../src/io/slab-pool';

const P = PAGE_SIZE;
const roots: string[] = [];
after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));

async function fileWith(data: Buffer): Promise<string> {
  const root = await fs.mkdtemp(path.join(tmpdir(), 'pgbb-pages-'));
  roots.push(root);
  const f = path.join(root, 'rel');
  await fs.writeFile(f, data);
  return f;
}

/** Feeds `data` at `from` in `split`-byte pieces, then flushes; returns the writer and how the file looked when the journal hook ran. */
async function feed(file: string, data: Buffer, from: number, split: number, opts: { diskSize?: number; window?: number; buffered?: boolean } = {}) {
  const fh = await fs.open(file, 'r+');
  const seen: Buffer[] = [];
  let journaled = 0;
  try {
    const w = new PageDiffWriter(fh, file, opts.diskSize ?? (await fh.stat()).size, async () => {
      journaled++;
      seen.push(await fs.readFile(file));
    }, opts.window, ...(opts.buffered ? [null] : []));
    for (let at = 0; at < data.length; at += split) await w.add(from + at, data.subarray(at, at + split));
    await w.flush();
    return { w, journaled, seen };
  } finally {
    await fh.close();
  }
}

test('only the pages that differ are written, however the data is split', async () => {
  const old = bytes(64 * P, 1);
  const next = Buffer.from(old);
  for (const page of [0, 7, 8, 40, 63]) next[page * P + 100] ^= 0xff; // 7 and 8: a run of two
  for (const [split, buffered] of [[1000, false], [P, false], [3 * P + 5, false], [next.length, false], [1000, true], [next.length, true]] as const) {
    const file = await fileWith(old);
    const { w, journaled, seen } = await feed(file, next, 0, split, { window: 16 * P, buffered });
    assert.equal(w.bytesWritten, 5 * P, `split ${split}`);
    assert.equal(w.bytesSame, 59 * P, `split ${split}`);
    assert.ok((await fs.readFile(file)).equals(next), `split ${split}`);
    assert.equal(journaled, 1, 'journaled once');
    assert.ok(seen[0]!.equals(old), 'journaled before the first byte changed');
    assert.ok(w.changed);
  }
});

test('identical data writes nothing and is never journaled', async () => {
  const old = bytes(20 * P + 123, 2);
  const file = await fileWith(old);
  const before = (await fs.stat(file)).mtimeMs;
  const { w, journaled } = await feed(file, old.subarray(2 * P), 2 * P, 5000);
  assert.equal(w.bytesWritten, 0);
  assert.equal(journaled, 0);
  assert.ok(!w.changed);
  assert.equal((await fs.stat(file)).mtimeMs, before);
});

test('a gap in the data flushes what was gathered; a short last page and bytes past the end are compared right', async () => {
  const old = bytes(4 * P + 100, 3);
  const file = await fileWith(old);
  const fh = await fs.open(file, 'r+');
  const w = new PageDiffWriter(fh, file, old.length, async () => {});
  const tail = Buffer.concat([old.subarray(3 * P), bytes(P, 4)]); // page 3 the same, the short page 4 grown, then page 5
  await w.add(0, old.subarray(0, P)); // the same
  await w.add(3 * P, tail); // a gap: pages 1 and 2 are not given
  await w.flush();
  await fh.close();
  // Page 4 held 100 bytes and now a whole page: written whole (a page is the unit); page 5's 100 bytes are new.
  assert.equal(w.bytesWritten, P + 100);
  assert.equal(w.bytesSame, 2 * P);
  assert.ok((await fs.readFile(file)).equals(Buffer.concat([old, tail.subarray(P + 100)])));
});

test('a file shorter than when it was opened: what is no longer there is written, not compared with stale bytes', async () => {
  const page = bytes(P, 5);
  const file = await fileWith(page); // one page, but the writer is told two
  const { w } = await feed(file, Buffer.concat([page, page]), 0, P, { diskSize: 2 * P, window: P });
  assert.equal(w.bytesWritten, P, 'the second page (the first window\'s bytes still in the scratch buffer) is written');
  assert.ok((await fs.readFile(file)).equals(Buffer.concat([page, page])));
});

test('pieces in recycled read memory are given back once compared and written, and not before: the slab comes back after the last flush', async () => {
  const old = bytes(16 * P, 3);
  const next = Buffer.from(old);
  next[5 * P + 9] ^= 0xff;
  const file = await fileWith(old);
  const recycled: ArrayBuffer[] = [];
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => {
    recycled.push(slab);
    new Uint8Array(slab).fill(0xa5); // as the tests' poison does: a piece still in use would be written as 0xA5
  };
  const fh = await fs.open(file, 'r+');
  try {
    // As the source hands them out: one read of the whole file into a slab, retained piece by piece.
    const reader = new SlabReader();
    reader.next().set(next);
    const read = reader.got(next.length);
    const pieces = [read.subarray(0, 3 * P + 5), read.subarray(3 * P + 5, 11 * P), read.subarray(11 * P)];
    for (const piece of pieces) retain(piece);
    reader.finish();
    const w = new PageDiffWriter(fh, file, old.length, async () => {}, 8 * P);
    let at = 0;
    for (const piece of pieces) {
      await w.add(at, piece);
      at += piece.length;
    }
    assert.deepEqual(recycled, [], 'a window still gathered holds its slab');
    await w.flush();
    assert.deepEqual(recycled, [read.buffer], 'every piece given back once written');
    assert.equal(w.bytesWritten, P);
  } finally {
    slabEvents.recycled = was;
    await fh.close();
  }
  assert.ok((await fs.readFile(file)).equals(next), 'what was written is what was read, not the poison');
});
