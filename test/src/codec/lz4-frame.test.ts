/**
 * The LZ4 frame decoder against frames lz4(1) writes with every option that
 * changes the format (linked and independent blocks, block checksums,
 * content size, no content checksum, each block maximum), concatenated and
 * skippable frames, pushed in pieces of every awkward size; and crafted or
 * damaged frames, each refused in one line naming the input.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { xxh32 } from '@node-rs/xxhash';
import { Lz4FrameDecoder } from '../../../src/codec/lz4-frame';
import { CompressionError } from '../../../src/errors';

/** Text-like data that compresses with long and short, overlapping and far matches, plus a random stretch. */
function sample(bytes: number): Buffer {
  const words = ['relation', 'pg_wal', 'tablespace', 'checkpoint', 'aaaaaaaaaaaaaaaaaaaaaaa', 'x'];
  const parts: Buffer[] = [];
  let n = 0;
  let seed = 7;
  while (n < bytes) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const p = seed % 50 === 0 ? randomBytes(3000) : Buffer.from(`${words[seed % words.length]}${seed % 977} `);
    parts.push(p);
    n += p.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

const lz4 = (input: Buffer, args: string[]) => execFileSync('lz4', [...args, '-c'], { input, maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'ignore'] });

function decode(input: Buffer, piece = input.length || 1): Buffer {
  const d = new Lz4FrameDecoder('"base.tar.lz4"');
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) {
    d.push(input.subarray(i, i + piece));
    for (let b = d.next(); b; b = d.next()) out.push(b);
  }
  d.finish();
  return Buffer.concat(out);
}

const data = sample(3_000_000);

for (const args of [['-1'], ['-9'], ['-BD'], ['-BD', '-B4'], ['-BX'], ['--content-size'], ['--no-frame-crc'], ['-B4'], ['-B5', '-BD', '-BX', '--content-size'], ['-B7']]) {
  test(`lz4 ${args.join(' ')}: decoded byte for byte, whole and in pieces`, () => {
    const framed = lz4(data, args);
    assert.ok(framed.length < data.length, 'compressed');
    assert.ok(decode(framed).equals(data));
    assert.ok(decode(framed, 4093).equals(data));
  });
}

test('linked blocks pushed a byte at a time (every boundary split)', () => {
  const small = sample(200_000);
  assert.ok(decode(lz4(small, ['-BD', '-B4', '-BX']), 1).equals(small));
});

test('concatenated frames, a skippable frame between them, and an empty frame', () => {
  const a = sample(100_000);
  const b = Buffer.from('tail');
  const skippable = Buffer.alloc(8 + 10);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(10, 4);
  const empty = lz4(Buffer.alloc(0), []);
  assert.ok(decode(Buffer.concat([lz4(a, ['-BD']), skippable, empty, lz4(b, [])]), 7).equals(Buffer.concat([a, b])));
});

const fails = (input: Buffer, re: RegExp) =>
  assert.throws(() => decode(input), (e: unknown) => e instanceof CompressionError && re.test(e.message) && e.message.includes('"base.tar.lz4"') && !e.message.includes('\n'));

test('truncated anywhere, or empty: "truncated", naming the input', () => {
  const framed = lz4(sample(300_000), ['-BD']);
  for (const cut of [1, 5, 7, 20, framed.length >> 1, framed.length - 1]) fails(framed.subarray(0, cut), /^truncated lz4 data in "base\.tar\.lz4": it ends inside a frame/);
  fails(Buffer.alloc(0), /no lz4 frame \(empty input\)/);
});

test('a flipped byte is caught by the content checksum, the block checksum or the block decoder', () => {
  const plainFrame = lz4(data, []);
  for (const at of [1000, 50_000, plainFrame.length - 100]) {
    const bad = Buffer.from(plainFrame);
    bad[at] ^= 0x55;
    fails(bad, /^corrupt lz4 data in "base\.tar\.lz4": .* \(at compressed byte \d+\)$/);
  }
  const checked = lz4(data, ['-BX']);
  const bad = Buffer.from(checked);
  bad[5000] ^= 0x01;
  fails(bad, /block checksum mismatch/);
});

/** A frame header: FLG, BD, optional content size, a zero dictionary id when flagged, then its checksum byte. */
function header(flg: number, bd: number, contentSize?: bigint): Buffer {
  const d = Buffer.alloc(2 + (contentSize !== undefined ? 8 : 0) + (flg & 1 ? 4 : 0));
  d[0] = flg;
  d[1] = bd;
  if (contentSize !== undefined) d.writeBigUInt64LE(contentSize, 2);
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x184d2204, 0);
  return Buffer.concat([magic, d, Buffer.from([(xxh32(d, 0) >>> 8) & 0xff])]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

test('crafted frames: each lie refused before anything is allocated for it', () => {
  // Independent blocks, 64 KiB maximum.
  const h = header(0x60, 0x40);
  fails(Buffer.concat([u32(0x12345678), Buffer.alloc(20)]), /not an lz4 frame \(magic 12345678\)/);
  fails(Buffer.concat([h.subarray(0, 6), Buffer.from([h[6] ^ 0xff])]), /frame header checksum mismatch/);
  fails(header(0xa0, 0x40), /unsupported lz4 frame version 2/);
  fails(header(0x62, 0x40), /reserved bits/);
  fails(header(0x60, 0x10), /invalid block maximum size code 1/);
  fails(header(0x61, 0x40), /needs a dictionary/);
  // A block claiming 2 GiB: refused at its size word, not waited for.
  fails(Buffer.concat([h, u32(0x7fffffff)]), /block of 2147483647 bytes, more than the frame's maximum of 65536/);
  // A match reaching before the start of output; offset 0.
  fails(Buffer.concat([h, u32(4), Buffer.from([0x10, 0x41, 0x05, 0x00]), u32(0)]), /match offset 5 reaches before the window/);
  fails(Buffer.concat([h, u32(4), Buffer.from([0x10, 0x41, 0x00, 0x00]), u32(0)]), /match offset 0/);
  // A match that would write past the 64 KiB maximum: 1 literal + a 70,000-byte run.
  const long = [0x1f, 0x41, 0x01, 0x00];
  let left = 70_000 - 4 - 15;
  while (left >= 255) (long.push(255), (left -= 255));
  long.push(left);
  fails(Buffer.concat([h, u32(long.length), Buffer.from(long), u32(0)]), /match runs past the maximum block size/);
  // Literals that run past the block.
  fails(Buffer.concat([h, u32(2), Buffer.from([0x50, 0x41]), u32(0)]), /literals run past the block/);
  // Declared content size not met, or exceeded.
  const sized = header(0x68, 0x40, 10n);
  fails(Buffer.concat([sized, u32(0x80000003), Buffer.from('abc'), u32(0)]), /frame holds 3 bytes, its header declares 10/);
  fails(Buffer.concat([sized, u32(0x8000000b), Buffer.from('abcdefghijk'), u32(0)]), /more data than the frame's declared content size of 10 bytes/);
  // Garbage after a good frame.
  fails(Buffer.concat([lz4(Buffer.from('ok'), []), Buffer.from('junkjunk')]), /not an lz4 frame/);
});

test('a crafted frame well formed but huge in output is decoded one bounded block at a time', () => {
  // Maximum-ratio blocks: each 4 MiB block of zeros from ~16 KiB; 64 MiB in all from 260 KiB, never held at once.
  const framed = lz4(Buffer.alloc(64 << 20), ['-B7', '-BD']);
  const d = new Lz4FrameDecoder('"zeros.lz4"');
  d.push(framed);
  let total = 0;
  let largest = 0;
  for (let b = d.next(); b; b = d.next()) {
    total += b.length;
    largest = Math.max(largest, b.length);
  }
  d.finish();
  assert.equal(total, 64 << 20);
  assert.ok(largest <= 4 << 20, `largest block ${largest}`);
});

/** A frame made by hand: independent blocks, maximum `bd` (0x40 64 KiB … 0x70 4 MiB), no checksums. */
function frameOf(blocks: Buffer[], bd = 0x70): Buffer {
  const desc = Buffer.from([0x60, bd]);
  const hc = (xxh32(desc, 0) >>> 8) & 0xff;
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x184d2204);
  return Buffer.concat([magic, desc, Buffer.from([hc]), ...blocks, Buffer.alloc(4)]);
}

function stored(data: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE((0x80000000 | data.length) >>> 0);
  return Buffer.concat([h, data]);
}

test('an empty stored block whose header ends a pushed piece decodes (it needs no bytes, and none are held)', () => {
  const framed = frameOf([stored(Buffer.alloc(0)), stored(Buffer.from('A'))]);
  const split = 4 + 3 + 4; // magic, descriptor, the empty block's header
  const d = new Lz4FrameDecoder('"x.lz4"');
  const out: Buffer[] = [];
  for (const piece of [framed.subarray(0, split), framed.subarray(split)]) {
    d.push(piece);
    for (let b = d.next(); b; b = d.next()) out.push(b);
  }
  d.finish();
  assert.equal(Buffer.concat(out).toString(), 'A');
});

test('tiny blocks in a 4 MiB-block frame: each output holds its own bytes, not a block-sized buffer', () => {
  // Block of 2 bytes: token 0x10 (one literal, no match) and the literal.
  const tiny = Buffer.from([0x02, 0x00, 0x00, 0x00, 0x10, 0x41]);
  const framed = frameOf(Array.from({ length: 1000 }, () => tiny));
  const d = new Lz4FrameDecoder('"x.lz4"');
  d.push(framed);
  let n = 0;
  for (let b = d.next(); b; b = d.next()) {
    assert.equal(b.toString(), 'A');
    // What waits downstream is counted by length: the memory behind it must be of that order.
    assert.ok(b.buffer.byteLength <= 8192, `one byte of output pins ${b.buffer.byteLength} bytes`);
    n++;
  }
  d.finish();
  assert.equal(n, 1000);
});

test('a 512 KiB block pushed a byte at a time is decoded (input pieces are not shifted one by one)', () => {
  const data = randomBytes(512 * 1024);
  const framed = frameOf([stored(data)], 0x60);
  // Quadratic before: over a minute for this block.
  assert.ok(decode(framed, 1).equals(data));
});
