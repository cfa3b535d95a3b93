/**
 * ContiguousParts (src/sources/contiguous-parts.ts): a split CopyData's parts
 * that are neighbours in read memory go on as one view, others in order as
 * they were; a held part keeps its slab from being recycled; the bytes and
 * the first/last flags are those of the message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendParser } from '../../../src/codec/protocol/backend-parser';
import { release, retain, slabEvents, SlabReader } from '../../../src/io/slab-pool';
import { ContiguousParts } from '../../../src/sources/contiguous-parts';

type Part = { bytes: Buffer; first: boolean; last: boolean };

function collector(): { parts: Part[]; handler: (p: Buffer, f: boolean, l: boolean) => void } {
  const parts: Part[] = [];
  return { parts, handler: (p, f, l) => parts.push({ bytes: p, first: f, last: l }) };
}

test('neighbouring parts are joined into one view; parts in separate buffers go on in order; last parts are never held', () => {
  const mem = Buffer.from('0123456789abcdefghij');
  const c = collector();
  const j = new ContiguousParts(c.handler);
  j.part(mem.subarray(0, 4), true, false);
  assert.equal(c.parts.length, 0, 'held until the next part');
  j.part(mem.subarray(4, 9), false, false);
  j.part(mem.subarray(9, 12), false, true);
  assert.equal(c.parts.length, 1);
  assert.deepEqual(c.parts[0], { bytes: mem.subarray(0, 12), first: true, last: true });
  assert.equal(c.parts[0].bytes.buffer, mem.buffer, 'a view, not a copy');
  // Not neighbours: the held part goes first, as it was.
  const other = Buffer.from('XYZ');
  j.part(mem.subarray(12, 15), true, false);
  j.part(other, false, false);
  j.part(mem.subarray(16, 18), false, true);
  assert.deepEqual(
    c.parts.slice(1).map((p) => [p.bytes.toString(), p.first, p.last]),
    [['cde', true, false], ['XYZ', false, false], ['gh', false, true]],
  );
  // A one-part message passes at once.
  j.part(mem.subarray(18, 20), true, true);
  assert.equal(c.parts.at(-1)!.bytes.toString(), 'ij');
});

test('through BackendParser over slab reads: each message arrives whole, in as few parts as its slabs allow, though its slabs are recycled and read into again', () => {
  const recycled: ArrayBuffer[] = [];
  const was = slabEvents.recycled;
  slabEvents.recycled = (slab) => void recycled.push(slab);
  try {
    // 40 CopyData messages of 32,768 bytes, each byte a function of its message's number and offset.
    const stream: Buffer[] = [];
    for (let m = 0; m < 40; m++) {
      const body = Buffer.alloc(32_768);
      for (let i = 0; i < body.length; i++) body[i] = (m * 7 + i) & 0xff;
      const h = Buffer.alloc(5);
      h[0] = 0x64;
      h.writeUInt32BE(body.length + 4, 1);
      stream.push(h, body);
    }
    const all = Buffer.concat(stream);
    const c = collector();
    const kept: Buffer[] = [];
    let parts = 0;
    let whole = 0;
    const joiner = new ContiguousParts((p, f, l) => {
      parts++;
      // What the reader does: a part kept is retained by its consumer before next() may move the slab on.
      retain(p);
      c.handler(Buffer.from(p), f, l);
      kept.push(p, Buffer.from(p));
    });
    const parser = new BackendParser(
      // A message whole in one read comes this way, as the decoder's copyData.
      (_code, body) => (whole++, c.handler(Buffer.from(body), true, true)),
      { wantParts: () => true, part: (p, f, l) => joiner.part(p, f, l) },
    );
    const reader = new SlabReader();
    // Each time the reader takes a slab (fresh or recycled), counted per slab.
    const taken = new Map<ArrayBufferLike, number>();
    let lastSlab: ArrayBufferLike | null = null;
    // Three reads fill a slab to where the reader moves on; the fourth, into a fresh or recycled slab, nearly fills it.
    const sizes = [70_000, 70_000, 70_000, 250_000];
    for (let at = 0, k = 0; at < all.length; k++) {
      const into = reader.next();
      const n = Math.min(sizes[k % 4], into.length, all.length - at);
      all.copy(into, 0, at, at + n);
      at += n;
      const got = reader.got(n);
      if (got.buffer !== lastSlab) taken.set((lastSlab = got.buffer), (taken.get(got.buffer) ?? 0) + 1);
      parser.write(got);
      // The consumer gives back what it kept once it is done with it (still as it was then): slabs come back
      // and are read into again, so a held part whose slab was not kept would be overwritten before it went on.
      const done = kept.splice(0);
      for (let i = 0; i < done.length; i += 2) {
        assert.ok(done[i].equals(done[i + 1]), 'a kept view changed before it was given back');
        release(done[i]);
      }
    }
    reader.finish();
    assert.ok(recycled.length >= 3, `${recycled.length} slabs came back and were reused`);
    // Every slab came back each time it was taken: none given back more than it lent (the pool drops such a slab), none kept.
    const back = new Map<ArrayBufferLike, number>();
    for (const slab of recycled) back.set(slab, (back.get(slab) ?? 0) + 1);
    assert.deepEqual(back, taken);
    const messages: Buffer[] = [];
    let cur: Buffer[] = [];
    for (const p of c.parts) {
      if (p.first) assert.equal(cur.length, 0);
      cur.push(p.bytes);
      if (p.last) (messages.push(Buffer.concat(cur)), (cur = []));
    }
    assert.equal(messages.length, 40);
    for (let m = 0; m < 40; m++) {
      assert.equal(messages[m].length, 32_768);
      assert.ok(messages[m].every((b, i) => b === ((m * 7 + i) & 0xff)), `message ${m}`);
    }
    // Joined, only a slab's end cuts a message in two.
    assert.ok(whole > 0 && parts > 0, `${whole} whole, ${parts} parts`);
    // Unjoined, each split message is two parts; joined, only a slab's end (about every 210 KB) cuts one.
    const split = 40 - whole;
    assert.ok(split > 10 && parts <= split + Math.ceil(all.length / 210_000), `${parts} parts for ${split} split messages`);
  } finally {
    slabEvents.recycled = was;
  }
});
