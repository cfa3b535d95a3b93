/**
 * ManifestHold (src/sources/manifest-hold.ts): small manifests stay in
 * memory as their pieces; large ones go to `pgbb.manifest.partial` (0600,
 * exclusive) and come back in pieces of at most readSize; the file's name
 * goes when it is read back and on discard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_SPOOL_NAME, ManifestHold } from '../../../src/sources/manifest-hold';
import { IoError } from '../../../src/errors';
import { release, retain, SLAB_SIZE, SlabReader, slabEvents } from '../../../src/io/slab-pool';

const dirOf = () => mkdtempSync(join(tmpdir(), 'pgbb-mhold-'));
const collect = async (it: AsyncIterable<Buffer>) => {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
};

test('small: the pieces as they came, in memory, no file', async () => {
  const dir = dirOf();
  try {
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 100 });
    const pieces = [Buffer.from('{ "a": 1,'), Buffer.from(' "WAL-Ranges": [] }')];
    for (const p of pieces) h.add(p);
    assert.equal(h.spooled, false);
    assert.equal(h.size, 28);
    assert.equal(h.tail().toString(), '{ "a": 1, "WAL-Ranges": [] }');
    const back = await collect(h.read());
    assert.deepEqual(back, pieces);
    assert.ok(back[0] === pieces[0], 'not copied');
    assert.ok(!existsSync(join(dir, MANIFEST_SPOOL_NAME)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('large: spooled to a 0600 file beside the WAL, read back in bounded pieces, then gone', async () => {
  const dir = dirOf();
  try {
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 1000, readSize: 300, tailSize: 200 });
    const whole: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const p = Buffer.from(`piece ${i} `.padEnd(97, '.') + '\n');
      whole.push(p);
      h.add(p);
    }
    const file = join(dir, MANIFEST_SPOOL_NAME);
    assert.ok(h.spooled);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(h.size, 50 * 98);
    const tail = h.tail().toString();
    assert.ok(tail.endsWith('piece 49 '.padEnd(97, '.') + '\n') && tail.length >= 200 && tail.length < 400, `tail of ${tail.length}`);
    h.detach();
    assert.ok(!existsSync(file), 'the name goes before the spool directory is removed');
    const back = await collect(h.read());
    assert.ok(back.every((b) => b.length <= 300));
    assert.deepEqual(Buffer.concat(back), Buffer.concat(whole));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file already there (or a symlink planted there) is refused, not followed', () => {
  const dir = dirOf();
  try {
    writeFileSync(join(dir, MANIFEST_SPOOL_NAME), 'theirs');
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 4 });
    assert.throws(() => h.add(Buffer.from('more than four')), (e: Error) => e instanceof IoError && /could not create manifest spool file/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('discard removes the file at once; a read under way stops', async () => {
  const dir = dirOf();
  try {
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 10, readSize: 10 });
    h.add(Buffer.alloc(100, 0x61));
    const file = join(dir, MANIFEST_SPOOL_NAME);
    assert.ok(existsSync(file));
    const it = h.read()[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.length, 10);
    h.discard();
    assert.ok(!existsSync(file));
    assert.equal((await it.next()).done, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no place for a file (not streaming yet): memory', () => {
  const h = new ManifestHold({ dir: () => null, memoryLimit: 4 });
  h.add(Buffer.from('more than four'));
  assert.equal(h.spooled, false);
});

test('a manifest growing past maxBytes is refused, in memory and in the file', () => {
  const dir = dirOf();
  try {
    for (const memoryLimit of [1000, 4]) {
      const h = new ManifestHold({ dir: () => dir, memoryLimit, maxBytes: 20 });
      h.add(Buffer.alloc(10));
      h.add(Buffer.alloc(10));
      assert.throws(() => h.add(Buffer.alloc(1)), (err: Error) => err instanceof IoError && /grows past 20 bytes/.test(err.message));
      assert.equal(h.size, 20);
      h.discard();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spooled, read back with recycle: slab views, each held until its writer gives it back, then recycled; the bytes are the manifest', async () => {
  const dir = dirOf();
  const recycled: ArrayBuffer[] = [];
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => void recycled.push(slab);
  try {
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 1000 });
    const whole = Buffer.alloc(900_000);
    for (let i = 0; i < whole.length; i++) whole[i] = (i * 7) & 0xff;
    for (let at = 0; at < whole.length; at += 30_000) h.add(whole.subarray(at, at + 30_000));
    assert.equal(h.spooled, true);
    const back = await collect(h.read(true));
    assert.ok(back.length >= 4, `${back.length} pieces`);
    for (const b of back) assert.equal(b.buffer.byteLength, SLAB_SIZE, 'a slab view, not a fresh buffer');
    assert.deepEqual(Buffer.concat(back), whole);
    // Nothing comes back while the pieces are held (retained for their writer).
    assert.equal(recycled.length, 0);
    for (const b of back) release(b);
    assert.ok(recycled.length >= 3, `${recycled.length} slabs recycled`);
  } finally {
    slabEvents.recycled = was;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spooled: the pieces that came in slabs are given back once in the file and out of the tail, so their slabs come back while the manifest arrives', async () => {
  const dir = dirOf();
  const recycled = new Set<ArrayBuffer>();
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => void recycled.add(slab);
  try {
    const h = new ManifestHold({ dir: () => dir, memoryLimit: 100_000, tailSize: 50_000 });
    // As the source hands them on: views of the slabs the socket read into, each retained.
    const reader = new SlabReader();
    const whole: Buffer[] = [];
    const slabs = new Set<ArrayBuffer>();
    for (let i = 0; i < 40; i++) {
      const into = reader.next();
      const piece = reader.got(30_000);
      assert.ok(into.length >= 30_000);
      piece.fill(i + 1);
      retain(piece);
      slabs.add(piece.buffer as ArrayBuffer);
      whole.push(Buffer.from(piece));
      h.add(piece);
    }
    reader.finish();
    assert.equal(h.spooled, true);
    // 1.2 MB came through two slabs, each given back (and read into again) once its pieces were in the file;
    // held until read, they would have taken five.
    assert.ok(slabs.size <= 3, `${slabs.size} slabs for 1.2 MB`);
    assert.ok(recycled.size >= 1);
    assert.equal(h.tail().length >= 50_000, true);
    const back = await collect(h.read());
    assert.deepEqual(Buffer.concat(back), Buffer.concat(whole));
  } finally {
    slabEvents.recycled = was;
    rmSync(dir, { recursive: true, force: true });
  }
});
