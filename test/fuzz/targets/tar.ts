/**
 * Fuzz targets for the tar codecs (src/codec/tar/*): header blocks, pax payloads,
 * and whole archives through TarParser, cut at random points. Seeds come from
 * pgbb's own TarWriter (long names, long link targets, non-UTF-8 names, the
 * backup descriptor comment), from tar-stream, and PostgreSQL-style ustar
 * headers with GNU long names and base-256 sizes.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pack } from 'tar-stream';
import { decodeHeader, decodePax, decodePaxOverrides } from '../../../src/codec/tar/header';
import { encodeHeader, paxRecord } from '../../../src/codec/tar/encode-header';
import { TarParser } from '../../../src/codec/tar/tar-parser';
import { TarWriter, type TarMemberHeader } from '../../../src/codec/tar/tar-writer';
import { pathFromBytes } from '../../../src/codec/path-bytes';
import { PgbbError } from '../../../src/errors';
import { chunked, mutate, Rng } from '../support/random';
import type { FuzzTarget } from '../support/target';

const MTIME = new Date('2024-01-02T03:04:05Z');

export async function writerArchive(members: Array<[TarMemberHeader, Buffer?]>, comment?: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const w = new TarWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(Buffer.from(c)), cb()) }));
  if (comment) w.commentNext(comment);
  const call = (f: (cb: (e?: Error | null) => void) => void) => new Promise<void>((res, rej) => f((e) => (e ? rej(e) : res())));
  for (const [h, d] of members) {
    await call((cb) => w.add(h, cb));
    if (h.kind === 'file') {
      if (d?.length) await call((cb) => w.write(d, cb));
      await call((cb) => w.endEntry(cb));
    }
  }
  await w.finalize();
  return Buffer.concat(chunks);
}

async function tarStreamArchive(): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((res) => p.on('end', () => res()));
  p.entry({ name: 'dir', type: 'directory', mode: 0o700 });
  p.entry({ name: `dir/${'x'.repeat(150)}`, mode: 0o600 }, Buffer.from('tar-stream data'));
  p.entry({ name: 'ln', type: 'symlink', linkname: 'dir' });
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A GNU 'L' long name and a base-256 size, as GNU tar writes them. */
function gnuArchive(): Buffer {
  const name = Buffer.from(`${'g'.repeat(120)}/file\0`);
  const hdr = (n: string, type: string, size: number, base256 = false) => {
    const b = encodeHeader({ name: n, type: '0', size, mode: 0o644, mtime: MTIME });
    b[156] = type.charCodeAt(0);
    if (base256) {
      b.fill(0, 124, 136);
      b[124] = 0x80;
      b.writeUInt32BE(size, 132);
    }
    b.write('ustar  \0', 257, 'latin1');
    let sum = 256;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += b[i]!;
    b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    return b;
  };
  const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
  return Buffer.concat([
    hdr('././@LongLink', 'L', name.length),
    name,
    pad(name.length),
    hdr('short', '0', 700, true),
    Buffer.alloc(700, 0x61),
    pad(700),
    Buffer.alloc(1024),
  ]);
}

/** Header fields: [offset, length] (name, mode, uid, gid, size, mtime, typeflag, linkname, magic, prefix). */
const FIELDS: Array<[number, number]> = [[0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [156, 1], [157, 100], [257, 8], [345, 155]];
const FIELD_VALUES = ['77777777777\0', '\x80\0\0\0\0\x10\0\0\0\0\0\0', '\x80\0\x10\0\0\0\0\0\0\0\0\0', '\x80\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', '\x80\0\0\0\0\0\0\0\xff\xff\xff\xff', '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', '-1', '', ' 17 ', '9', 'x', '1', '2', '5', '7', 'L', 'K', 'x', 'g', '3', '../../etc/passwd', '/abs', '.', './', 'ustar\0', 'ustar  '];

/** Sets the checksum field of the header at `off` to the block's sum. */
export function fixChecksum(b: Buffer, off: number): void {
  b.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = off; i < off + 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 'latin1');
}

/** Offsets of the header blocks in an archive (blocks with a ustar magic). */
export function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 512 <= b.length; off += 512) if (b.toString('latin1', off + 257, off + 262) === 'ustar') out.push(off);
  return out;
}

/**
 * A field-aware edit of one header (a numeric field set to a huge, negative or
 * malformed value, a type changed, a name made hostile), with the checksum
 * fixed so the parser goes past it.
 */
export function mutateHeader(rng: Rng, archive: Buffer, offsets: number[]): Buffer {
  const out = Buffer.from(archive);
  const off = rng.pick(offsets);
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const [at, len] = rng.pick(FIELDS);
    const v = rng.chance(0.7) ? Buffer.from(rng.pick(FIELD_VALUES), 'latin1') : rng.bytes(rng.int(len + 1));
    out.fill(0, off + at, off + at + len);
    v.copy(out, off + at, 0, Math.min(len, v.length));
  }
  fixChecksum(out, off);
  return out;
}

/** pax records as GNU tar --format=pax writes them: path, linkpath, size, mtime, and a global header. */
function paxArchive(): Buffer {
  const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
  const meta = (type: string, records: Buffer) => {
    const h = encodeHeader({ name: 'PaxHeaders/x', type: '0', size: records.length, mode: 0o644, mtime: MTIME });
    h[156] = type.charCodeAt(0);
    fixChecksum(h, 0);
    return Buffer.concat([h, records, pad(records.length)]);
  };
  const body = Buffer.alloc(900, 0x62);
  return Buffer.concat([
    meta('g', paxRecord('comment', Buffer.from('global'))),
    meta('x', Buffer.concat([paxRecord('path', Buffer.from(`p/${'q'.repeat(150)}`)), paxRecord('mtime', Buffer.from('1700000000.123456789')), paxRecord('size', Buffer.from('900'))])),
    encodeHeader({ name: 'short', type: '0', size: 0, mode: 0o600, mtime: MTIME }),
    body,
    pad(body.length),
    meta('x', Buffer.concat([paxRecord('linkpath', Buffer.from(`/${'l'.repeat(150)}`)), paxRecord('mtime', Buffer.from('1700000001'))])),
    encodeHeader({ name: 'link', type: '2', size: 0, mode: 0o777, mtime: MTIME, linkname: 'x' }),
    Buffer.alloc(1024),
  ]);
}

interface Ctx {
  archives: Buffer[];
  offsets: number[][];
  headers: Buffer[];
  pax: Buffer[];
}

async function setup(): Promise<Ctx> {
  const raw = pathFromBytes(Buffer.from([0x62, 0x61, 0x73, 0x65, 0x2f, 0xff, 0xfe, 0x78]));
  const members: Array<[TarMemberHeader, Buffer?]> = [
    [{ name: 'backup_label', kind: 'file', size: 40, mode: 0o600, mtime: MTIME }, Buffer.alloc(40, 0x4c)],
    [{ name: 'base', kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }],
    [{ name: 'base/1/1259', kind: 'file', size: 1500, mode: 0o600, mtime: MTIME }, Buffer.alloc(1500, 3)],
    [{ name: `base/${'l'.repeat(295)}`, kind: 'file', size: 10, mode: 0o600, mtime: MTIME }, Buffer.alloc(10, 9)],
    [{ name: raw, kind: 'file', size: 3, mode: 0o600, mtime: MTIME }, Buffer.from('raw')],
    [{ name: 'pg_tblspc/16385', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: `/${'t'.repeat(199)}` }],
    [{ name: 'global/pg_control', kind: 'file', size: 0, mode: 0o600, mtime: MTIME }, Buffer.alloc(0)],
  ];
  const archives = [await writerArchive(members, 'pgbb-backup {"version":1}'), await tarStreamArchive(), gnuArchive(), paxArchive()];
  // The seeds themselves parse: mutations start from valid archives. pgbb's
  // own archive gives back exactly the members written into it.
  archives.forEach((a, i) => parseArchive(new Rng(i), a));
  assert.deepEqual(
    summary(parseArchive(new Rng(9), archives[0]!)),
    members.map(([h, d]) => ({ path: h.name, kind: h.kind, size: h.size, linkTarget: h.linkTarget, data: (d ?? Buffer.alloc(0)).toString('hex') })),
  );
  const headers = [
    encodeHeader({ name: 'base/1/1259', type: '0', size: 8192, mode: 0o600, mtime: MTIME }),
    encodeHeader({ name: 'pg_wal/archive_status', type: '5', size: 0, mode: 0o700, mtime: MTIME }),
    encodeHeader({ name: 'pg_tblspc/1', type: '2', size: 0, mode: 0o777, mtime: MTIME, linkname: '/srv/ts' }),
    gnuArchive().subarray(1024, 1536),
  ];
  const pax = [
    Buffer.concat([paxRecord('path', Buffer.from('a'.repeat(200))), paxRecord('linkpath', Buffer.from('/x')), paxRecord('size', Buffer.from('123')), paxRecord('mtime', Buffer.from('1700000000.5'))]),
    Buffer.concat([paxRecord('comment', Buffer.from('pgbb-backup {"version":1}')), Buffer.alloc(20)]),
    Buffer.concat([paxRecord('hdrcharset', Buffer.from('BINARY')), paxRecord('path', Buffer.from([0xff, 0x2f, 0x41]))]),
  ];
  return { archives, headers, pax, offsets: archives.map(headerOffsets) };
}

export const header: FuzzTarget<Ctx> = {
  setup,
  run(rng, ctx) {
    const seed = rng.pick(ctx.headers);
    const block = rng.chance(0.1) ? rng.bytes(512) : rng.chance(0.5) ? mutateHeader(rng, seed, [0]) : mutate(rng, seed, 3);
    const padded = block.length >= 512 ? block : Buffer.concat([block, Buffer.alloc(512 - block.length)]);
    const h = decodeHeader(padded, rng.chance(0.9) ? 0 : Math.min(rng.int(4), padded.length - 512));
    if (h) {
      for (const v of [h.mode, h.uid, h.gid, h.size, h.mtime]) assert.ok(Number.isSafeInteger(v), `numeric field ${v}`);
      assert.ok(h.size >= 0);
    }
  },
};

export const pax: FuzzTarget<Ctx> = {
  setup,
  run(rng, ctx) {
    const payload = rng.chance(0.1) ? rng.bytes(rng.int(300)) : mutate(rng, rng.pick(ctx.pax));
    if (rng.chance(0.5)) decodePax(payload);
    else {
      const o = decodePaxOverrides(payload);
      if (o.size !== undefined) assert.ok(Number.isSafeInteger(o.size) && o.size >= 0);
      if (o.mtime !== undefined) assert.equal(typeof o.mtime, 'number');
    }
  },
};

/** What TarParser made of an archive: its members with their data, and the PgbbError it stopped with, if any. */
interface Parsed {
  members: Array<{ path: string; kind: string; size: number; linkTarget?: string; data: Buffer }>;
  error: PgbbError | null;
}

/** Feeds `pieces` to a TarParser, checking the handler's contract as it goes (a broken contract throws an AssertionError). */
function parsePieces(pieces: Buffer[], requireEndMarker: boolean): Parsed {
  let open: { size: number; next: number; chunks: Buffer[] } | null = null;
  const members: Parsed['members'] = [];
  const parser = new TarParser(
    {
      entry(m) {
        assert.equal(open, null, 'entry inside an entry');
        assert.ok(m.path.length > 0 && Number.isSafeInteger(m.size) && m.size >= 0);
        assert.ok(!Number.isNaN(m.mtime.getTime()), 'valid mtime');
        open = { size: m.size, next: 0, chunks: [] };
        members.push({ path: m.path, kind: m.kind, size: m.size, linkTarget: m.linkTarget, data: Buffer.alloc(0) });
      },
      data(chunk, offset) {
        assert.ok(open, 'data outside an entry');
        assert.equal(offset, open.next, 'contiguous offsets');
        open.next += chunk.length;
        assert.ok(open.next <= open.size, 'no more data than the header says');
        // Kept as handed out (not copied): a view into a buffer the parser reuses would show when compared later.
        open.chunks.push(chunk);
      },
      entryEnd() {
        assert.ok(open, 'entryEnd outside an entry');
        assert.equal(open.next, open.size, 'all the data before entryEnd');
        members[members.length - 1]!.data = Buffer.concat(open.chunks);
        open = null;
      },
      globalHeader(records) {
        assert.equal(typeof records, 'object');
      },
    },
    { archiveName: 'fuzz.tar', requireEndMarker },
  );
  try {
    for (const piece of pieces) parser.write(piece);
    parser.end();
  } catch (err) {
    if (err instanceof PgbbError) return { members, error: err };
    throw err;
  }
  assert.equal(open, null, 'every entry ended');
  return { members, error: null };
}

const summary = (p: Parsed) => p.members.map((m) => ({ ...m, data: m.data.toString('hex') }));

/**
 * Parses `input` cut at random points and whole: the members, their bytes
 * and the outcome must not depend on where the input was cut (the members
 * whole are compared after the cut run, so data handed out as views must
 * still hold). Rethrows the parser's error so the case counts as rejected.
 */
export function parseArchive(rng: Rng, input: Buffer): Parsed {
  const requireEndMarker = rng.chance(0.5);
  const cut = parsePieces(chunked(rng, input), requireEndMarker);
  const whole = parsePieces([input], requireEndMarker);
  assert.deepEqual(summary(cut), summary(whole), 'the same members and bytes whatever the chunking');
  assert.equal(cut.error?.code, whole.error?.code, `the same outcome whatever the chunking: ${cut.error?.message} / ${whole.error?.message}`);
  if (cut.error) throw cut.error;
  return cut;
}

export const parser: FuzzTarget<Ctx> = {
  setup,
  run(rng, ctx) {
    const k = rng.int(ctx.archives.length);
    const seed = ctx.archives[k]!;
    const input = rng.chance(0.05) ? rng.bytes(rng.int(3000)) : rng.chance(0.5) ? mutateHeader(rng, seed, ctx.offsets[k]!) : mutate(rng, seed);
    parseArchive(rng, input);
  },
};
