/**
 * Tests for the tar header codec (src/codec/tar/header.ts): named header fixtures
 * built by hand, by tar-stream and by GNU tar; numeric field forms (octal with
 * spaces/NULs, base-256); checksums (unsigned, signed, mismatch); pax records.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { TarFormatError } from '../../../../src/errors';
import {
  decodeHeader,
  decodeLongName,
  decodeNumber,
  decodePax,
  decodePaxOverrides,
} from '../../../../src/codec/tar/header';

interface BlockFields {
  name?: string;
  mode?: string;
  uid?: string;
  gid?: string;
  size?: string | Buffer;
  mtime?: string | Buffer;
  type?: string;
  linkname?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  prefix?: string;
  /** Store the checksum as the signed byte sum. */
  signedChecksum?: boolean;
  /** Add this to the stored checksum (to corrupt it). */
  checksumDelta?: number;
}

/** A 512-byte header block with raw field text, for edge cases. */
function block(f: BlockFields): Buffer {
  const b = Buffer.alloc(512);
  const put = (v: string | Buffer, at: number, len: number) => {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    assert.ok(bytes.length <= len, `field at ${at} too long`);
    bytes.copy(b, at);
  };
  put(f.name ?? 'file', 0, 100);
  put(f.mode ?? '0000644\0', 100, 8);
  put(f.uid ?? '0000000\0', 108, 8);
  put(f.gid ?? '0000000\0', 116, 8);
  put(f.size ?? '00000000000\0', 124, 12);
  put(f.mtime ?? '14533462420\0', 136, 12);
  if (f.type !== undefined) put(f.type, 156, 1);
  put(f.linkname ?? '', 157, 100);
  const magic = f.magic ?? 'ustar';
  if (magic === 'ustar') put('ustar\x0000', 257, 8);
  if (magic === 'gnu') put('ustar  \0', 257, 8);
  put(f.prefix ?? '', 345, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += f.signedChecksum && x >= 128 ? x - 256 : x;
  sum += f.checksumDelta ?? 0;
  const text = sum < 0 ? '-' + (-sum).toString(8) : sum.toString(8).padStart(6, '0');
  b.write(text + '\0 ', 148, 'latin1');
  return b;
}

function packOne(header: Parameters<ReturnType<typeof pack>['entry']>[0], body = ''): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = pack();
    const parts: Buffer[] = [];
    p.on('data', (c) => { parts.push(c as Buffer); });
    p.on('end', () => resolve(Buffer.concat(parts)));
    p.on('error', reject);
    p.entry(header, body, (err) => (err ? reject(err) : p.finalize()));
  });
}

test('tar-stream file header: name, mode, size, mtime, type', async () => {
  const tar = await packOne({ name: 'base/1/123', mode: 0o600, mtime: new Date(1_700_000_000_000), uid: 26, gid: 27 }, 'x'.repeat(42));
  const h = decodeHeader(tar);
  assert.deepEqual(h, {
    name: 'base/1/123', mode: 0o600, uid: 26, gid: 27, size: 42, mtime: 1_700_000_000, type: '0', linkname: '',
  });
});

test('tar-stream symlink header: type 2 and linkname', async () => {
  const tar = await packOne({ name: 'pg_tblspc/16385/', type: 'symlink', linkname: '/srv/tblspc' });
  const h = decodeHeader(tar)!;
  assert.equal(h.type, '2');
  assert.equal(h.name, 'pg_tblspc/16385/');
  assert.equal(h.linkname, '/srv/tblspc');
});

test('tar-stream ustar prefix is joined to the name', async () => {
  const long = 'a'.repeat(80) + '/' + 'b'.repeat(60) + '/file';
  const tar = await packOne({ name: long });
  assert.equal(tar[156], 0x30); // no pax header was needed: prefix + name
  assert.notEqual(tar[345], 0);
  assert.equal(decodeHeader(tar)!.name, long);
});

test('GNU tar header: "ustar  " magic, prefix area not joined', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-header-'));
  try {
    writeFileSync(join(dir, 'f'), 'hello');
    utimesSync(join(dir, 'f'), 1_600_000_000, 1_600_000_000);
    const tar = execFileSync('tar', ['--format=gnu', '--owner=0', '--group=0', '-C', dir, '-cf', '-', 'f']);
    assert.equal(tar.toString('latin1', 257, 265), 'ustar  \0');
    const h = decodeHeader(tar)!;
    assert.equal(h.name, 'f');
    assert.equal(h.size, 5);
    assert.equal(h.mtime, 1_600_000_000);
    assert.equal(h.type, '0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('header at an offset inside a larger buffer', () => {
  const buf = Buffer.concat([Buffer.alloc(700, 1), block({ name: 'at-offset', size: '00000000012\0' })]);
  assert.equal(decodeHeader(buf, 700)!.name, 'at-offset');
  assert.equal(decodeHeader(buf, 700)!.size, 10);
});

test('all-zero block is the end-of-archive marker', () => {
  assert.equal(decodeHeader(Buffer.alloc(512)), null);
  assert.equal(decodeHeader(Buffer.alloc(1024), 512), null);
});

test('typeflag NUL reads as "0"; other typeflags as their character', () => {
  assert.equal(decodeHeader(block({}))!.type, '0');
  assert.equal(decodeHeader(block({ type: '5' }))!.type, '5');
  assert.equal(decodeHeader(block({ type: 'x' }))!.type, 'x');
});

test('ustar prefix joined only for POSIX magic', () => {
  assert.equal(decodeHeader(block({ name: 'n', prefix: 'p/q' }))!.name, 'p/q/n');
  assert.equal(decodeHeader(block({ name: 'n', prefix: 'p/q', magic: 'gnu' }))!.name, 'n');
  assert.equal(decodeHeader(block({ name: 'n', prefix: 'p/q', magic: 'v7' }))!.name, 'n');
});

test('UTF-8 names', () => {
  assert.equal(decodeHeader(block({ name: 'données/é' }))!.name, 'données/é');
});

test('octal fields: leading spaces, space or NUL terminators, empty field', () => {
  const h = decodeHeader(block({ mode: '   644 \0', uid: '     12 ', gid: '\0\0\0\0\0\0\0\0', size: '   1000\0    ' }))!;
  assert.equal(h.mode, 0o644);
  assert.equal(h.uid, 0o12);
  assert.equal(h.gid, 0);
  assert.equal(h.size, 0o1000);
  // Full-width octal without terminator (11 digits + space in size is common; 12 digits is legal too)
  assert.equal(decodeHeader(block({ size: '777777777777' }))!.size, 8 ** 12 - 1);
});

test('base-256 size (over 8 GiB) and negative base-256 mtime', () => {
  const size = Buffer.alloc(12);
  size[0] = 0x80;
  size.writeUIntBE(10 * 1024 ** 3, 6, 6);
  const mtime = Buffer.alloc(12, 0xff); // -1 in two's complement
  const h = decodeHeader(block({ size, mtime }))!;
  assert.equal(h.size, 10 * 1024 ** 3);
  assert.equal(h.mtime, -1);
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUIntBE(2 ** 40 + 5, 6, 6);
  assert.equal(decodeNumber(big, 0, 12), 2 ** 40 + 5);
});

test('base-256 value beyond 2^53 is rejected', () => {
  const size = Buffer.alloc(12, 0x7f);
  size[0] = 0x80;
  assert.throws(() => decodeHeader(block({ name: 'huge', size })), {
    name: 'TarFormatError',
    message: 'invalid size field in tar header for member "huge"',
  });
});

test('negative base-256 size is rejected', () => {
  const size = Buffer.alloc(12, 0xff);
  assert.throws(() => decodeHeader(block({ name: 'neg', size })), /negative size .*"neg"/);
});

test('invalid octal digit names the field and the member', () => {
  assert.throws(() => decodeHeader(block({ name: 'base/1/123', size: '0000000009\0' })), {
    name: 'TarFormatError',
    message: 'invalid size field in tar header for member "base/1/123"',
  });
  assert.throws(() => decodeHeader(block({ name: 'm', mode: '06 4\0\0\0\0' })), /invalid mode field .*"m"/);
  assert.throws(() => decodeHeader(block({ name: 'm', mtime: 'abc\0' })), /invalid mtime field/);
});

test('checksum stored as the signed sum is accepted', () => {
  const h = decodeHeader(block({ name: 'é-signed', signedChecksum: true }));
  assert.equal(h!.name, 'é-signed');
});

test('checksum mismatch names the member', () => {
  assert.throws(() => decodeHeader(block({ name: 'base/1/123', checksumDelta: 1 })), (err: unknown) => {
    assert.ok(err instanceof TarFormatError);
    assert.equal(err.code, 'tar_format');
    assert.equal(err.message, 'tar header checksum mismatch for member "base/1/123"');
    return true;
  });
});

test('a corrupted byte fails the checksum', () => {
  const b = block({ name: 'global/pg_control' });
  b[200] = 0x41;
  assert.throws(() => decodeHeader(b), /checksum mismatch for member "global\/pg_control"/);
});

test('too short a buffer is an error', () => {
  assert.throws(() => decodeHeader(Buffer.alloc(100)), TarFormatError);
  assert.throws(() => decodeHeader(Buffer.alloc(600), 100), TarFormatError);
});

function rec(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

test('pax records: lengths in bytes, later records win, "=" in values', () => {
  const text = rec('path', 'données/' + 'x'.repeat(200)) + rec('linkpath', 'a=b') + rec('path', 'final') + rec('mtime', '1700000000.25');
  assert.deepEqual(decodePax(Buffer.from(text)), { path: 'final', linkpath: 'a=b', mtime: '1700000000.25' });
  assert.deepEqual(decodePax(Buffer.from(rec('path', 'é'.repeat(60)))), { path: 'é'.repeat(60) });
});

test('pax records: empty payload and trailing NUL padding', () => {
  assert.deepEqual(decodePax(Buffer.alloc(0)), {});
  assert.deepEqual(decodePax(Buffer.concat([Buffer.from(rec('size', '12')), Buffer.alloc(5)])), { size: '12' });
});

test('pax records: malformed ones are rejected', () => {
  const bad = [
    '11 path=x\n',   // length 11, only 10 bytes left
    '9 path=xy\n',   // the 9-byte record does not end in a newline
    '9 pathxy\n',    // no '='
    '5 =x\n',        // empty key
    'x path=y\n',    // no length
    '11path=xy\n',   // no space after the length
    '2 ',            // length too small for a record
    '0 ',
    rec('path', 'ok') + '\0garbage',
  ];
  for (const text of bad) {
    assert.throws(() => decodePax(Buffer.from(text)), TarFormatError, JSON.stringify(text));
  }
});

test('pax overrides: path, linkpath, size, mtime; empty values are no override', () => {
  const buf = Buffer.from(rec('path', 'p') + rec('linkpath', 'l') + rec('size', '123456789012') + rec('mtime', '1700000000.5') + rec('uname', 'postgres'));
  assert.deepEqual(decodePaxOverrides(buf), { path: 'p', linkpath: 'l', size: 123456789012, mtime: 1700000000.5 });
  assert.deepEqual(decodePaxOverrides(Buffer.from(rec('path', ''))), {});
  assert.throws(() => decodePaxOverrides(Buffer.from(rec('size', '-1'))), /invalid pax size "-1"/);
  assert.throws(() => decodePaxOverrides(Buffer.from(rec('size', '99999999999999999999'))), /invalid pax size/);
  assert.throws(() => decodePaxOverrides(Buffer.from(rec('mtime', 'soon'))), /invalid pax mtime "soon"/);
});

test('GNU long name payload: trailing NULs stripped', () => {
  assert.equal(decodeLongName(Buffer.from('a/very/long/name\0\0\0')), 'a/very/long/name');
  assert.equal(decodeLongName(Buffer.from('no-nul')), 'no-nul');
});
