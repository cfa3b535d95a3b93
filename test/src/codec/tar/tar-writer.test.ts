/**
 * Tests for TarWriter and the header encoder (src/codec/tar/tar-writer.ts,
 * src/codec/tar/encode-header.ts): named members (long names, long link targets,
 * non-UTF-8 names, a pax comment, sizes and mtimes beyond the octal fields)
 * round-trip through TarParser and through GNU tar; size mismatches fail
 * naming the member; backpressure holds the callback until the output
 * drains; an output error reaches every waiting callback and finalize().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { extract } from 'tar-stream';
import { TarFormatError } from '../../../../src/errors';
import { pathFromBytes, pathToBytes } from '../../../../src/codec/path-bytes';
import { encodeHeader, paxRecord } from '../../../../src/codec/tar/encode-header';
import { decodeHeader } from '../../../../src/codec/tar/header';
import { TarParser, type TarMember } from '../../../../src/codec/tar/tar-parser';
import { TarWriter, type TarMemberHeader } from '../../../../src/codec/tar/tar-writer';

const MTIME = new Date('2024-05-06T07:08:09Z');
const raw = (...parts: Array<string | number[]>) =>
  pathFromBytes(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))));

/** Named members: [header, data]. */
const FIXTURES: Array<[string, TarMemberHeader, Buffer?]> = [
  ['short file', { name: 'base/1/1259', kind: 'file', size: 5, mode: 0o600, mtime: MTIME }, Buffer.from('hello')],
  ['directory', { name: 'pg_wal/archive_status', kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }],
  ['empty file', { name: 'standby.signal', kind: 'file', size: 0, mode: 0o600, mtime: MTIME }, Buffer.alloc(0)],
  ['symlink', { name: 'pg_tblspc/16384', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: '/srv/ts' }],
  ['name of exactly 100 bytes', { name: 'n'.repeat(100), kind: 'file', size: 1, mode: 0o600, mtime: MTIME }, Buffer.from('x')],
  ['150-byte path split into ustar prefix', { name: `${'p'.repeat(90)}/${'q'.repeat(59)}`, kind: 'file', size: 3, mode: 0o644, mtime: MTIME }, Buffer.from('abc')],
  ['300-byte path (pax path)', { name: `${'d'.repeat(120)}/${'e'.repeat(179)}`, kind: 'file', size: 1000, mode: 0o600, mtime: MTIME }, Buffer.alloc(1000, 7)],
  ['300-byte directory', { name: `${'a'.repeat(99)}/${'b'.repeat(99)}/${'c'.repeat(100)}`, kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }],
  ['200-byte symlink target (pax linkpath)', { name: 'pg_tblspc/16385', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: `/${'t'.repeat(99)}/${'u'.repeat(99)}` }],
  ['non-UTF-8 name', { name: raw([0xff, 0xfe], 'x'), kind: 'file', size: 2, mode: 0o600, mtime: MTIME }, Buffer.from('ok')],
  ['long non-UTF-8 name (pax path, hdrcharset=BINARY)', { name: raw('z'.repeat(150), [0xc3, 0x28], 'end'), kind: 'file', size: 0, mode: 0o600, mtime: MTIME }, Buffer.alloc(0)],
  ['non-UTF-8 symlink target', { name: 'link', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: raw('target-', [0x80]) }],
  ['UTF-8 name', { name: 'größe-😀', kind: 'file', size: 1, mode: 0o600, mtime: MTIME }, Buffer.from('1')],
  ['mtime before 1970 (base-256)', { name: 'old', kind: 'file', size: 0, mode: 0o600, mtime: new Date(-86400_000) }, Buffer.alloc(0)],
  ['mtime past the octal field (base-256)', { name: 'future', kind: 'file', size: 0, mode: 0o600, mtime: new Date(8 ** 11 * 1000 + 5000) }, Buffer.alloc(0)],
];

function collector(): { out: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { out, bytes: () => Buffer.concat(chunks) };
}

async function writeArchive(members: Array<[TarMemberHeader, Buffer?]>, comment?: string): Promise<Buffer> {
  const { out, bytes } = collector();
  const w = new TarWriter(out);
  if (comment) w.commentNext(comment);
  const call = (f: (cb: (err?: Error | null) => void) => void) => new Promise<void>((res, rej) => f((e) => (e ? rej(e) : res())));
  for (const [h, data] of members) {
    await call((cb) => w.add(h, cb));
    if (h.kind === 'file') {
      // In two pieces: the writer must not care where data is cut.
      const d = data ?? Buffer.alloc(0);
      if (d.length) await call((cb) => w.write(d.subarray(0, d.length >> 1), cb));
      if (d.length > d.length >> 1) await call((cb) => w.write(d.subarray(d.length >> 1), cb));
      await call((cb) => w.endEntry(cb));
    }
  }
  await w.finalize();
  return bytes();
}

function parseAll(archive: Buffer): Array<TarMember & { data: Buffer }> {
  const out: Array<TarMember & { data: Buffer }> = [];
  let parts: Buffer[] = [];
  const p = new TarParser(
    {
      entry: (m) => {
        parts = [];
        out.push({ ...m, data: Buffer.alloc(0) });
      },
      data: (c) => parts.push(Buffer.from(c)),
      entryEnd: () => (out[out.length - 1].data = Buffer.concat(parts)),
    },
    { requireEndMarker: true },
  );
  p.write(archive);
  p.end();
  return out;
}

test('every named member round-trips through TarParser (path, kind, size, mode, mtime, link target, data)', async () => {
  const archive = await writeArchive(FIXTURES.map(([, h, d]) => [h, d]), 'pgbb-backup {"x":1}');
  assert.equal(archive.length % 512, 0);
  const got = parseAll(archive);
  assert.equal(got.length, FIXTURES.length);
  FIXTURES.forEach(([name, h, data], i) => {
    const m = got[i];
    assert.equal(m.path, h.name, name);
    assert.deepEqual(pathToBytes(m.path), pathToBytes(h.name), `${name}: same bytes`);
    assert.equal(m.kind, h.kind, name);
    assert.equal(m.mode, h.mode, name);
    assert.equal(m.mtime.getTime(), Math.floor(h.mtime.getTime() / 1000) * 1000, name);
    assert.equal(m.linkTarget, h.kind === 'symlink' ? h.linkTarget : undefined, name);
    assert.deepEqual(m.data, h.kind === 'file' ? data : Buffer.alloc(0), name);
    assert.equal(m.comment, i === 0 ? 'pgbb-backup {"x":1}' : undefined, name);
  });
});

test('GNU tar extracts long names, long link targets and non-UTF-8 names byte for byte', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tarw-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const longDir = `${'d'.repeat(120)}`;
  const longFile = `${longDir}/${'e'.repeat(179)}`;
  const rawName = raw([0xff, 0xfe], 'x');
  const rawLong = raw('z'.repeat(150), [0xc3, 0x28]);
  const target = `/${'t'.repeat(99)}/${'u'.repeat(99)}`;
  const archive = await writeArchive([
    [{ name: longDir, kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }],
    [{ name: longFile, kind: 'file', size: 4, mode: 0o600, mtime: MTIME }, Buffer.from('long')],
    [{ name: rawName, kind: 'file', size: 3, mode: 0o600, mtime: MTIME }, Buffer.from('raw')],
    [{ name: rawLong, kind: 'file', size: 2, mode: 0o600, mtime: MTIME }, Buffer.from('rl')],
    [{ name: 'link', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: target }],
  ]);
  execFileSync('tar', ['-xf', '-', '-C', dir], { input: archive });
  assert.equal(readFileSync(join(dir, longFile), 'utf8'), 'long');
  assert.equal(readlinkSync(join(dir, 'link')), target);
  const names = readdirSync(dir, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort();
  const expected = [longDir, 'link', rawName, rawLong].map((n) => pathToBytes(n).toString('hex')).sort();
  assert.deepEqual(names, expected);
  assert.equal(readFileSync(Buffer.concat([Buffer.from(`${dir}/`), pathToBytes(rawName)]), 'utf8'), 'raw');
  assert.equal(readFileSync(Buffer.concat([Buffer.from(`${dir}/`), pathToBytes(rawLong)]), 'utf8'), 'rl');
});

test('tar-stream reads what TarWriter writes (another reader, same members)', async () => {
  const archive = await writeArchive(FIXTURES.filter(([n]) => !/non-UTF-8|base-256/.test(n)).map(([, h, d]) => [h, d]));
  const ex = extract();
  const names: string[] = [];
  ex.on('entry', (h, stream, next) => {
    names.push(h.name.replace(/\/$/, ''));
    stream.resume();
    stream.on('end', next);
  });
  const done = new Promise<void>((res, rej) => ex.on('finish', () => res()).on('error', rej));
  ex.end(archive);
  await done;
  assert.deepEqual(names, FIXTURES.filter(([n]) => !/non-UTF-8|base-256/.test(n)).map(([, h]) => h.name));
});

test('encodeHeader: short names use the ustar fields only; a long path becomes a pax record with the exact bytes', () => {
  const short = encodeHeader({ name: 'base/1/2', type: '0', size: 10, mode: 0o600, mtime: MTIME });
  assert.equal(short.length, 512);
  const h = decodeHeader(short)!;
  assert.deepEqual([h.name, h.size, h.mode, h.type, h.mtime], ['base/1/2', 10, 0o600, '0', MTIME.getTime() / 1000]);
  const name = raw('y'.repeat(200), [0xff]);
  const long = encodeHeader({ name, type: '0', size: 0, mode: 0o600, mtime: MTIME });
  assert.equal(long.length, 512 * 3);
  const payload = long.subarray(512, 1024);
  assert.ok(payload.includes(paxRecord('hdrcharset', Buffer.from('BINARY'))));
  assert.ok(payload.includes(paxRecord('path', pathToBytes(name))));
});

test('encodeHeader: a link target over 100 bytes is a pax linkpath, and the ustar linkname field is left empty, never cut off', () => {
  const target = `/${'t'.repeat(99)}/${'u'.repeat(99)}`;
  const long = encodeHeader({ name: 'pg_tblspc/16385', type: '2', size: 0, mode: 0o777, mtime: MTIME, linkname: target });
  const ustar = long.subarray(long.length - 512);
  assert.ok(ustar.subarray(157, 257).equals(Buffer.alloc(100)), 'linkname field all NUL');
  assert.ok(long.subarray(512, long.length - 512).includes(paxRecord('linkpath', Buffer.from(target))));
  const exact = encodeHeader({ name: 'l', type: '2', size: 0, mode: 0o777, mtime: MTIME, linkname: 'x'.repeat(100) });
  assert.equal(exact.length, 512, 'a 100-byte target fits the field');
  assert.equal(decodeHeader(exact)!.linkname, 'x'.repeat(100));
});

test('paxRecord: the length prefix counts its own digits at every digit boundary', () => {
  for (let n = 0; n < 1100; n++) {
    const rec = paxRecord('k', Buffer.alloc(n, 0x61));
    const len = Number(rec.toString('latin1').split(' ')[0]);
    assert.equal(len, rec.length, `value of ${n} bytes`);
  }
});

test('a member that gets more or fewer bytes than its header says fails, naming it', async () => {
  const more = new TarWriter(collector().out);
  more.add({ name: 'base/1/more', kind: 'file', size: 2, mode: 0o600, mtime: MTIME });
  const err = await new Promise<Error | null | undefined>((res) => more.write(Buffer.from('abc'), res));
  assert.ok(err instanceof TarFormatError);
  assert.equal(err.message, 'tar member "base/1/more" got 3 bytes but its header says 2');
  await assert.rejects(more.finalize(), TarFormatError);

  const fewer = new TarWriter(collector().out);
  fewer.add({ name: raw('few', [0xff]), kind: 'file', size: 5, mode: 0o600, mtime: MTIME });
  await new Promise((res) => fewer.write(Buffer.from('ab'), res));
  const e2 = await new Promise<Error | null | undefined>((res) => fewer.endEntry(res));
  assert.ok(e2 instanceof TarFormatError);
  assert.equal(e2.message, 'tar member "few\\xff" ended after 2 of the 5 bytes its header says');
});

test('backpressure: write calls back only once a slow output has drained', async () => {
  const pending: Array<() => void> = [];
  let received = 0;
  const slow = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _e, cb) {
      received += chunk.length;
      pending.push(() => cb());
    },
  });
  const w = new TarWriter(slow);
  w.add({ name: 'big', kind: 'file', size: 1 << 20, mode: 0o600, mtime: MTIME });
  const chunk = Buffer.alloc(32 * 1024);
  /** Writes one chunk; resolves true when its callback came within 50 ms. */
  const accepted = (ms = 50) =>
    new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), ms);
      w.write(chunk, (e) => {
        clearTimeout(timer);
        assert.ifError(e);
        res(true);
      });
    });
  let sent = 0;
  while (await accepted()) sent += chunk.length;
  sent += chunk.length; // the one still waiting
  // The output took one write and holds it: what the writer took is bounded
  // by its own highWaterMark plus the output's queue, far below the 1 MiB.
  assert.ok(sent <= 256 * 1024, `took ${sent} bytes while the output was stuck`);
  assert.ok(received <= 512 + chunk.length, `the output saw ${received} bytes`);
  // Let the output drain: the waiting callback comes, and so do the rest.
  let more = 0;
  const drain = setInterval(() => pending.splice(0).forEach((f) => f()), 1);
  try {
    await new Promise((res) => setTimeout(res, 20));
    while (sent < 1 << 20) {
      assert.ok(await accepted(1000), 'a callback once the output drains');
      sent += chunk.length;
      more++;
    }
    await new Promise<void>((res, rej) => w.endEntry((e) => (e ? rej(e) : res())));
    await w.finalize();
  } finally {
    clearInterval(drain);
  }
  assert.ok(more > 0);
  assert.equal(received, 512 + (1 << 20) + 1024);
});

test('an output error reaches a waiting callback and finalize()', async () => {
  const failing = new Writable({
    highWaterMark: 16,
    write(_c, _e, cb) {
      setTimeout(() => cb(new Error('disk on fire')), 5);
    },
  });
  const w = new TarWriter(new PassThrough({ highWaterMark: 16 }), failing);
  w.add({ name: 'f', kind: 'file', size: 1 << 20, mode: 0o600, mtime: MTIME });
  const errors: Array<Error | null | undefined> = [];
  for (let i = 0; i < 64 && errors.length === 0; i++) {
    await new Promise<void>((res) =>
      w.write(Buffer.alloc(16 * 1024), (e) => {
        if (e) errors.push(e);
        res();
      }),
    );
  }
  assert.equal(errors[0]?.message, 'disk on fire');
  await assert.rejects(w.finalize(), /disk on fire/);
});
