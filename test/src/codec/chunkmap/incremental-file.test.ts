/**
 * The INCREMENTAL.<name> codec: parsed identically however the bytes are cut
 * (every two-piece split, every piece size), with and without blocks; every
 * malformation refused with the file named; names and rebuilt lengths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeIncrementalFile, IncrementalFileParser, incrementalHeaderLength, incrementalTarget, rebuiltBlockCount, type IncrementalHeader,
} from '../../../../src/codec/chunkmap/incremental-file';
import { bytes } from '../../../support/chunk-fixtures';

const B = 64; // a small block size keeps every-split tests quick; the layout scales with it

function parse(file: Buffer, pieces: Buffer[], segmentBlocks = 1000): { header: IncrementalHeader; blocks: Array<[number, string]> } {
  let header: IncrementalHeader | null = null;
  const blocks: Array<[number, string]> = [];
  const p = new IncrementalFileParser({ file: 'base/5/INCREMENTAL.1', blockSize: B, segmentBlocks, size: file.length });
  for (const piece of pieces) p.push(piece, { header: (h) => (header = h), block: (b, img) => blocks.push([b, img.toString('hex')]) });
  p.end();
  return { header: header!, blocks };
}

const images: Array<[number, Buffer]> = [[2, bytes(B, 1)], [7, bytes(B, 2)], [40, bytes(B, 3)]];
const file = encodeIncrementalFile(30, images, B);

test('layout: header padded to a block, then the images', () => {
  assert.equal(incrementalHeaderLength(3, B), B);
  assert.equal(incrementalHeaderLength(0, B), 12);
  assert.equal(incrementalHeaderLength(20, B), 2 * B);
  assert.equal(file.length, B + 3 * B);
  assert.equal(file.readUInt32LE(0), 0xd3ae1f0d);
  assert.equal(file.readUInt32LE(4), 3);
  assert.equal(file.readUInt32LE(8), 30);
});

test('parsed the same at every split point and with every piece size', () => {
  const want = parse(file, [file]);
  assert.deepEqual([...want.header.blocks], [2, 7, 40]);
  assert.equal(want.header.truncationBlockLength, 30);
  assert.equal(want.header.headerLength, B);
  assert.deepEqual(want.blocks, images.map(([b, img]) => [b, img.toString('hex')]));
  for (let i = 0; i <= file.length; i++) assert.deepEqual(parse(file, [file.subarray(0, i), file.subarray(i)]), want, `split at ${i}`);
  for (let n = 1; n < file.length; n++) {
    const pieces = [];
    for (let at = 0; at < file.length; at += n) pieces.push(file.subarray(at, at + n));
    assert.deepEqual(parse(file, pieces), want, `pieces of ${n}`);
  }
});

test('no blocks: 12 bytes, the rebuilt file is truncation_block_length long', () => {
  const empty = encodeIncrementalFile(9, [], B);
  assert.equal(empty.length, 12);
  for (let i = 0; i <= 12; i++) {
    const r = parse(empty, [empty.subarray(0, i), empty.subarray(i)]);
    assert.equal(r.header.truncationBlockLength, 9);
    assert.equal(r.blocks.length, 0);
  }
});

test('malformed files are refused, naming the file', () => {
  const bad = (f: Buffer, size = f.length, segmentBlocks = 1000) => () => {
    const p = new IncrementalFileParser({ file: 'base/5/INCREMENTAL.1', blockSize: B, segmentBlocks, size });
    p.push(f, { header: () => {}, block: () => {} });
    p.end();
  };
  const magic = Buffer.from(file);
  magic[0] ^= 1;
  assert.throws(bad(magic), /incremental file "base\/5\/INCREMENTAL.1": bad magic number 0xd3ae1f0c/);
  assert.throws(bad(file, file.length, 20), /block count 3|truncation block length 30 exceeds the segment size 20/);
  assert.throws(bad(encodeIncrementalFile(5, [[7, bytes(B, 1)], [3, bytes(B, 2)]], B)), /block numbers out of order \(7, then 3\)/);
  assert.throws(bad(encodeIncrementalFile(5, [[2000, bytes(B, 1)]], B)), /block number 2000 is beyond the segment size 1000/);
  assert.throws(bad(file, file.length + B), /does not match its 3 blocks/);
  assert.throws(bad(file.subarray(0, file.length - 1), file.length), /ends after 2 of 3 blocks/);
  assert.throws(bad(file.subarray(0, 8), file.length), /inside its header/);
  assert.throws(bad(Buffer.concat([file, Buffer.alloc(1)]), file.length), /more than its 256 bytes/);
});

test('names and rebuilt lengths', () => {
  assert.equal(incrementalTarget('base/5/INCREMENTAL.16384'), 'base/5/16384');
  assert.equal(incrementalTarget('PG_17_1/5/INCREMENTAL.16384.1'), 'PG_17_1/5/16384.1');
  assert.equal(incrementalTarget('base/5/16384'), null);
  assert.equal(incrementalTarget('base/5/INCREMENTAL.'), null);
  assert.equal(rebuiltBlockCount({ truncationBlockLength: 30, blocks: new Uint32Array([2, 40]) }), 41);
  assert.equal(rebuiltBlockCount({ truncationBlockLength: 30, blocks: new Uint32Array([2]) }), 30);
  assert.equal(rebuiltBlockCount({ truncationBlockLength: 4, blocks: new Uint32Array() }), 4);
});
