/**
 * An archive's bytes (src/sources/archive-bytes.ts): a stream is told by its
 * magic (zstd, gzip, plain) and decompressed; archive files by their suffix;
 * a link or a FIFO named as an archive is refused without being followed or
 * blocking; an encrypted archive without a key says which key to give; a
 * manifest is cut into capped pieces that join back to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { cappedPieces, maybeDecompress, openArchive, peek } from '../../../src/sources/archive-bytes';
import { MANIFEST_PIECE_BYTES } from '../../../transforms/tar-unpack';

async function all(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of gen) out.push(b);
  return Buffer.concat(out);
}

const body = Buffer.from('tar bytes '.repeat(5000));

test('a stream is told by its magic: zstd, gzip and plain come out as the same bytes', async () => {
  const zst = execFileSync('zstd', ['-q', '-c'], { input: body });
  for (const [what, bytes] of [['zstd', zst], ['gzip', gzipSync(body)], ['plain', body]] as const) {
    const out = await all(maybeDecompress(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]), 'standard input'));
    assert.ok(out.equals(body), what);
  }
});

test('peek gives the first bytes and the whole stream again', async () => {
  const pieces = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')];
  const { head, all: rest } = await peek((async function* () { yield* pieces; })(), 4);
  assert.equal(head.toString(), 'abcdefgh');
  assert.equal((await all(rest)).toString(), 'abcdefghij');
});

test('archive files: decompressed by suffix; a link, a FIFO or an encrypted one without a key is refused, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-archive-bytes-'));
  try {
    writeFileSync(join(dir, 'base.tar.zst'), execFileSync('zstd', ['-q', '-c'], { input: body }));
    assert.ok((await all(openArchive(join(dir, 'base.tar.zst'), undefined))).equals(body));
    symlinkSync(join(dir, 'base.tar.zst'), join(dir, 'link.tar.zst'));
    await assert.rejects(all(openArchive(join(dir, 'link.tar.zst'), undefined)), /link\.tar\.zst/);
    execFileSync('mkfifo', [join(dir, 'fifo.tar')]);
    await assert.rejects(all(openArchive(join(dir, 'fifo.tar'), undefined)), /fifo\.tar/);
    writeFileSync(join(dir, 'base.tar.age'), 'age-encryption.org/v1\n');
    await assert.rejects(all(openArchive(join(dir, 'base.tar.age'), undefined)), /base\.tar\.age is encrypted: give its key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a manifest in capped pieces: none larger than a piece, joined they are the input', async () => {
  const manifest = Buffer.alloc(MANIFEST_PIECE_BYTES * 2 + 1234, 0x7b);
  const chunks = [manifest.subarray(0, 1000), manifest.subarray(1000, MANIFEST_PIECE_BYTES + 5), manifest.subarray(MANIFEST_PIECE_BYTES + 5)];
  const pieces: Buffer[] = [];
  for await (const p of cappedPieces(Readable.from(chunks), 'backup_manifest')) pieces.push(p);
  assert.ok(pieces.every((p) => p.length <= MANIFEST_PIECE_BYTES));
  assert.ok(Buffer.concat(pieces).equals(manifest));
});
