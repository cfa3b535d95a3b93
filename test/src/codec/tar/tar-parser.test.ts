/**
 * Tests for TarParser (src/codec/tar/tar-parser.ts). Every named fixture (tar-stream,
 * GNU tar in gnu/ustar/pax formats, PostgreSQL-style) is fed whole, split at
 * every byte offset, byte by byte and in random chunkings, and must give the
 * same members and data each time, with data handed over zero-copy. Then the
 * errors: truncation (named member and byte counts), bad checksum, unsupported
 * types, oversized extended headers, data after the end marker.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, lutimesSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, type Header } from 'tar-stream';
import { TarFormatError } from '../../../../src/errors';
import { TarMember, TarParser, TarParserHandler, TarParserOptions } from '../../../../src/codec/tar/tar-parser';
import { pathToBytes } from '../../../../src/codec/path-bytes';

// ---------------------------------------------------------------- helpers

interface Got {
  path: string;
  kind: TarMember['kind'];
  size: number;
  mode: number;
  mtime: number;
  linkTarget?: string;
  data: Buffer;
}

/** Records handler calls, checking their order, offsets and zero-copy data. */
class Recorder implements TarParserHandler {
  readonly members: Got[] = [];
  readonly pieces: Buffer[] = [];
  private open: Got | null = null;
  private parts: Buffer[] = [];
  private next = 0;
  constructor(private readonly source: Buffer) {}
  entry(m: TarMember): void {
    assert.equal(this.open, null, 'entry() inside an entry');
    this.open = { path: m.path, kind: m.kind, size: m.size, mode: m.mode, mtime: m.mtime.getTime(), data: Buffer.alloc(0) };
    if (m.linkTarget !== undefined) this.open.linkTarget = m.linkTarget;
    this.parts = [];
    this.next = 0;
  }
  data(chunk: Buffer, offset: number): void {
    assert.ok(this.open, 'data() outside an entry');
    assert.equal(offset, this.next, 'data offsets are contiguous');
    assert.ok(chunk.length > 0, 'no empty data chunks');
    assert.equal(chunk.buffer, this.source.buffer, 'data is a view of the input (zero-copy)');
    assert.ok(chunk.byteOffset >= this.source.byteOffset && chunk.byteOffset + chunk.length <= this.source.byteOffset + this.source.length);
    this.next += chunk.length;
    this.parts.push(chunk);
    this.pieces.push(chunk);
  }
  entryEnd(): void {
    assert.ok(this.open, 'entryEnd() outside an entry');
    this.open.data = Buffer.concat(this.parts);
    assert.equal(this.open.data.length, this.open.size, `size of ${this.open.path}`);
    this.members.push(this.open);
    this.open = null;
  }
  get inEntry(): boolean {
    return this.open !== null;
  }
}

/** Parses `source` cut at `cuts` (ascending offsets). */
function parse(source: Buffer, cuts: number[] = [], options: TarParserOptions = {}) {
  const rec = new Recorder(source);
  const parser = new TarParser(rec, options);
  let prev = 0;
  for (const cut of [...cuts, source.length]) {
    parser.write(source.subarray(prev, cut));
    prev = cut;
  }
  parser.end();
  assert.equal(rec.inEntry, false, 'every entry ended');
  return { members: rec.members, ended: parser.ended, rec };
}

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCuts(len: number, random: () => number, max: number): number[] {
  const cuts: number[] = [];
  for (let at = 0; ; ) {
    at += Math.floor(random() * max);
    if (at >= len) return cuts;
    cuts.push(at);
  }
}

/** Parses whole, at every split point, byte by byte and in random chunks: always the same result. */
function assertEverySplit(source: Buffer, options: TarParserOptions = {}) {
  const whole = parse(source, [], options);
  for (let i = 0; i <= source.length; i++) {
    const r = parse(source, [i], options);
    assert.deepEqual(r.members, whole.members, `split at ${i}`);
    assert.equal(r.ended, whole.ended);
  }
  const bytes = Array.from({ length: source.length }, (_, i) => i);
  assert.deepEqual(parse(source, bytes, options).members, whole.members, 'byte by byte');
  const random = rng(source.length);
  for (let round = 0; round < 30; round++) {
    const cuts = randomCuts(source.length, random, round % 2 ? 40 : 3000);
    assert.deepEqual(parse(source, cuts, options).members, whole.members, `random chunking ${round}`);
  }
  return whole;
}

function pattern(len: number, seed: number): Buffer {
  const random = rng(seed);
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(random() * 256);
  return b;
}

interface HeaderSpec {
  name: string;
  type?: string;
  size?: number;
  mode?: number;
  mtime?: number;
  linkname?: string;
  /** Raw 12-byte size field (e.g. base-256). */
  rawSize?: Buffer;
  badChecksum?: boolean;
}

/** A ustar header block, as PostgreSQL's tar.c writes it. */
function ustar(h: HeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  const octal = (n: number, at: number, len: number) => b.write(n.toString(8).padStart(len - 1, '0') + '\0', at, 'latin1');
  b.write(h.name, 0, 'utf8');
  octal(h.mode ?? 0o600, 100, 8);
  octal(26, 108, 8);
  octal(26, 116, 8);
  if (h.rawSize) h.rawSize.copy(b, 124);
  else octal(h.size ?? 0, 124, 12);
  octal(h.mtime ?? 1_700_000_000, 136, 12);
  b.write(h.type ?? '0', 156, 'latin1');
  b.write(h.linkname ?? '', 157, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  b.write('postgres', 265, 'latin1');
  b.write('postgres', 297, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (h.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

/** A header, its data and padding to 512 bytes. */
function member(h: HeaderSpec, data: Buffer = Buffer.alloc(0)): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([ustar({ size: data.length, ...h }), data, Buffer.alloc(pad)]);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

const EOA = Buffer.alloc(1024);

function packAll(entries: Array<{ header: Partial<Header> & { name: string }; body?: Buffer }>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = pack();
    const parts: Buffer[] = [];
    p.on('data', (c) => { parts.push(c as Buffer); });
    p.on('end', () => resolve(Buffer.concat(parts)));
    p.on('error', reject);
    const next = (i: number): void => {
      if (i === entries.length) return p.finalize();
      const e = entries[i]!;
      p.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : next(i + 1)));
    };
    next(0);
  });
}

function typeflags(archive: Buffer): string[] {
  const out: string[] = [];
  // Walk headers roughly: enough to check a fixture holds what it claims.
  for (let at = 0; at + 512 <= archive.length; ) {
    if (archive[at] === 0) break;
    const size = parseInt(archive.toString('latin1', at + 124, at + 136).replace(/\0.*$/, '').trim() || '0', 8);
    out.push(String.fromCharCode(archive[at + 156] || 0x30));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function expectFailure(source: Buffer, cuts: number[], options: TarParserOptions, message: string | RegExp): void {
  assert.throws(() => parse(source, cuts, options), (err: unknown) => {
    assert.ok(err instanceof TarFormatError, String(err));
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

// ---------------------------------------------------------------- fixtures

const T = 1_700_000_000;

test('fixture tar-stream-mixed: files, empty, 512/513 bytes, dir, symlink, pax long name and link, pax mtime', async () => {
  const long = 'deep/' + ('d'.repeat(48) + '/').repeat(5) + 'f'.repeat(50); // ~300 bytes: needs pax
  const longTarget = '/srv/' + 't'.repeat(200);
  const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
  const spec: Array<{ header: Partial<Header> & { name: string }; body?: Buffer; want: Omit<Got, 'data'> & { data?: Buffer } }> = [
    { header: { name: 'backup_label', mode: 0o600, mtime: new Date(T * 1000) }, body: label,
      want: { path: 'backup_label', kind: 'file', size: label.length, mode: 0o600, mtime: T * 1000, data: label } },
    { header: { name: 'empty', mode: 0o644, mtime: new Date(T * 1000) },
      want: { path: 'empty', kind: 'file', size: 0, mode: 0o644, mtime: T * 1000 } },
    { header: { name: 'base', type: 'directory', mode: 0o700, mtime: new Date(T * 1000) },
      want: { path: 'base', kind: 'directory', size: 0, mode: 0o700, mtime: T * 1000 } },
    { header: { name: 'base/1/', type: 'directory', mode: 0o700, mtime: new Date(T * 1000) },
      want: { path: 'base/1', kind: 'directory', size: 0, mode: 0o700, mtime: T * 1000 } },
    { header: { name: 'base/1/exact512', mode: 0o600, mtime: new Date(T * 1000) }, body: pattern(512, 1),
      want: { path: 'base/1/exact512', kind: 'file', size: 512, mode: 0o600, mtime: T * 1000, data: pattern(512, 1) } },
    { header: { name: 'base/1/over513', mode: 0o600, mtime: new Date(T * 1000) }, body: pattern(513, 2),
      want: { path: 'base/1/over513', kind: 'file', size: 513, mode: 0o600, mtime: T * 1000, data: pattern(513, 2) } },
    { header: { name: 'link', type: 'symlink', linkname: 'base/1/exact512', mode: 0o777, mtime: new Date(T * 1000) },
      want: { path: 'link', kind: 'symlink', size: 0, mode: 0o777, mtime: T * 1000, linkTarget: 'base/1/exact512' } },
    { header: { name: long, mode: 0o640, mtime: new Date(T * 1000) }, body: pattern(1000, 3),
      want: { path: long, kind: 'file', size: 1000, mode: 0o640, mtime: T * 1000, data: pattern(1000, 3) } },
    { header: { name: 'longlink', type: 'symlink', linkname: longTarget, mode: 0o777, mtime: new Date(T * 1000) },
      want: { path: 'longlink', kind: 'symlink', size: 0, mode: 0o777, mtime: T * 1000, linkTarget: longTarget } },
    { header: { name: 'fractional', mode: 0o600, mtime: new Date(T * 1000), pax: { mtime: `${T}.25` } }, body: Buffer.from('x'),
      want: { path: 'fractional', kind: 'file', size: 1, mode: 0o600, mtime: T * 1000 + 250, data: Buffer.from('x') } },
  ];
  const archive = await packAll(spec);
  assert.deepEqual(typeflags(archive).filter((t) => t === 'x').length, 3, 'fixture has pax headers');
  const got = assertEverySplit(archive);
  assert.equal(got.ended, true);
  assert.deepEqual(got.members, spec.map((s) => ({ ...s.want, data: s.want.data ?? Buffer.alloc(0) })));
});

interface FsEntry { path: string; kind: TarMember['kind']; mode: number; mtime: number; data?: Buffer; target?: string }

/** Creates `entries` under a temp dir, archives it with GNU tar (`-C dir .`), returns the archive. */
function gnuTar(format: string, entries: FsEntry[], extraArgs: string[] = []): Buffer {
  const dir = mkdtempSync(join(tmpdir(), `pgbb-tar-${format}-`));
  try {
    for (const e of entries) {
      const p = join(dir, e.path);
      if (e.kind === 'directory') mkdirSync(p, { recursive: true });
      else if (e.kind === 'symlink') symlinkSync(e.target!, p);
      else writeFileSync(p, e.data ?? Buffer.alloc(0));
    }
    for (const e of [...entries].reverse()) {
      const p = join(dir, e.path);
      if (e.kind === 'symlink') lutimesSync(p, e.mtime, e.mtime);
      else {
        chmodSync(p, e.mode);
        utimesSync(p, e.mtime, e.mtime);
      }
    }
    return execFileSync('tar', [`--format=${format}`, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', ...extraArgs, '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function expectedFrom(entries: FsEntry[]): Got[] {
  return entries
    .map((e) => {
      const g: Got = {
        path: e.path,
        kind: e.kind,
        size: e.kind === 'file' ? (e.data?.length ?? 0) : 0,
        mode: e.kind === 'symlink' ? 0o777 : e.mode,
        mtime: Math.floor(e.mtime * 1000),
        data: e.kind === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0),
      };
      if (e.kind === 'symlink') g.linkTarget = e.target!;
      return g;
    })
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

function byPath(members: Got[]): Got[] {
  return [...members].sort((a, b) => (a.path < b.path ? -1 : 1));
}

const commonTree: FsEntry[] = [
  { path: 'PG_VERSION', kind: 'file', mode: 0o600, mtime: T, data: Buffer.from('17\n') },
  { path: 'base', kind: 'directory', mode: 0o700, mtime: T + 1 },
  { path: 'base/1', kind: 'directory', mode: 0o700, mtime: T + 2 },
  { path: 'base/1/1259', kind: 'file', mode: 0o600, mtime: T + 3, data: pattern(8192 + 100, 4) },
  { path: 'base/1/empty', kind: 'file', mode: 0o600, mtime: T + 4 },
  { path: 'pg_tblspc', kind: 'directory', mode: 0o700, mtime: T + 5 },
  { path: 'pg_tblspc/16385', kind: 'symlink', mode: 0o777, mtime: T + 6, target: '/srv/tblspc' },
];

test('fixture gnu-tar-gnu-format: "./" names, GNU L and K long names', () => {
  const entries: FsEntry[] = [
    ...commonTree,
    { path: 'long', kind: 'directory', mode: 0o755, mtime: T + 7 },
    { path: 'long/' + 'n'.repeat(120), kind: 'directory', mode: 0o755, mtime: T + 8 },
    { path: 'long/' + 'n'.repeat(120) + '/' + 'f'.repeat(120), kind: 'file', mode: 0o640, mtime: T + 9, data: pattern(777, 5) },
    { path: 'longlink', kind: 'symlink', mode: 0o777, mtime: T + 10, target: 'x'.repeat(150) },
  ];
  const archive = gnuTar('gnu', entries, ['--blocking-factor=1']);
  const flags = typeflags(archive);
  assert.ok(flags.includes('L') && flags.includes('K'), `fixture has L and K headers: ${flags.join('')}`);
  const got = assertEverySplit(archive);
  assert.equal(got.ended, true);
  assert.deepEqual(byPath(got.members), expectedFrom(entries));
});

test('fixture gnu-tar-ustar-format: prefix field, default 10 KiB record padding', () => {
  const entries: FsEntry[] = [
    ...commonTree,
    { path: 'p'.repeat(90), kind: 'directory', mode: 0o750, mtime: T + 7 },
    { path: 'p'.repeat(90) + '/' + 'q'.repeat(90), kind: 'file', mode: 0o600, mtime: T + 8, data: pattern(4096, 6) },
  ];
  const archive = gnuTar('ustar', entries);
  assert.equal(archive.length % 10240, 0);
  const got = assertEverySplit(archive);
  assert.equal(got.ended, true);
  assert.deepEqual(byPath(got.members), expectedFrom(entries));
});

test('fixture gnu-tar-pax-format: pax path, linkpath and fractional mtime', () => {
  const entries: FsEntry[] = [
    ...commonTree,
    { path: 'fraction', kind: 'file', mode: 0o600, mtime: T + 0.5, data: Buffer.from('half a second') },
    { path: 'z'.repeat(150) + '/' + 'y'.repeat(120), kind: 'file', mode: 0o600, mtime: T, data: pattern(600, 7) },
    { path: 'z'.repeat(150), kind: 'directory', mode: 0o700, mtime: T },
    { path: 'longlink', kind: 'symlink', mode: 0o777, mtime: T, target: 'w'.repeat(200) },
  ];
  // Directories must exist before their children are created.
  const ordered = [...entries].sort((a, b) => a.path.length - b.path.length);
  const archive = gnuTar('pax', ordered, ['--blocking-factor=1']);
  assert.ok(typeflags(archive).includes('x'), 'fixture has pax headers');
  const got = assertEverySplit(archive);
  assert.deepEqual(byPath(got.members), expectedFrom(entries));
});

/** As PostgreSQL's basebackup.c sends base.tar (no end marker before 15). */
function postgresArchive(): { archive: Buffer; want: Got[] } {
  const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: pgbb\n');
  const rel = pattern(8192, 8);
  const control = pattern(2000, 9); // (8192 in PostgreSQL; kept short: every split is O(n^2))
  const parts: Array<[HeaderSpec, Buffer?]> = [
    [{ name: 'backup_label', mode: 0o600 }, label],
    [{ name: 'PG_VERSION', mode: 0o600 }, Buffer.from('16\n')],
    [{ name: 'base/', type: '5', mode: 0o700 }],
    [{ name: 'base/1/', type: '5', mode: 0o700 }],
    [{ name: 'base/1/1259', mode: 0o600 }, rel],
    [{ name: 'pg_tblspc/', type: '5', mode: 0o700 }],
    [{ name: 'pg_tblspc/16385/', type: '2', mode: 0o777, linkname: '/srv/pg/tblspc' }],
    [{ name: 'pg_wal/', type: '5', mode: 0o700 }],
    [{ name: './pg_wal/archive_status/', type: '5', mode: 0o700 }],
    [{ name: 'global/', type: '5', mode: 0o700 }],
    [{ name: 'global/pg_control', mode: 0o600 }, control],
  ];
  const archive = Buffer.concat(parts.map(([h, d]) => member(h, d)));
  const f = (path: string, data: Buffer): Got => ({ path, kind: 'file', size: data.length, mode: 0o600, mtime: T * 1000, data });
  const d = (path: string): Got => ({ path, kind: 'directory', size: 0, mode: 0o700, mtime: T * 1000, data: Buffer.alloc(0) });
  const want: Got[] = [
    f('backup_label', label), f('PG_VERSION', Buffer.from('16\n')), d('base'), d('base/1'), f('base/1/1259', rel), d('pg_tblspc'),
    { path: 'pg_tblspc/16385', kind: 'symlink', size: 0, mode: 0o777, mtime: T * 1000, linkTarget: '/srv/pg/tblspc', data: Buffer.alloc(0) },
    d('pg_wal'), d('pg_wal/archive_status'), d('global'), f('global/pg_control', control),
  ];
  return { archive, want };
}

test('fixture postgres-14-base: "./pg_wal/archive_status/", symlink with trailing slash, no end marker', () => {
  const { archive, want } = postgresArchive();
  const got = assertEverySplit(archive, { archiveName: 'base.tar' });
  assert.equal(got.ended, false);
  assert.deepEqual(got.members, want);
  expectFailure(archive, [], { archiveName: 'base.tar', requireEndMarker: true }, 'tar archive "base.tar" ends without the end-of-archive marker');
});

test('fixture postgres-15-base: end marker, then record padding zeros', () => {
  const { archive, want } = postgresArchive();
  const withEnd = Buffer.concat([archive, EOA, Buffer.alloc(1000)]);
  const got = assertEverySplit(withEnd, { requireEndMarker: true });
  assert.equal(got.ended, true);
  assert.deepEqual(got.members, want);
});

// ---------------------------------------------------------------- behaviour

test('steady state: a chunk that is all data is handed over as the same Buffer', () => {
  const chunk = 32 * 1024;
  const archive = Buffer.concat([ustar({ name: 'base/1/big', size: 32 * chunk }), pattern(32 * chunk, 10), EOA]);
  const rec = new Recorder(archive);
  const parser = new TarParser(rec);
  parser.write(archive.subarray(0, 512));
  const chunks: Buffer[] = [];
  for (let at = 512; at < archive.length; at += chunk) {
    const c = archive.subarray(at, Math.min(at + chunk, archive.length));
    chunks.push(c);
    parser.write(c);
  }
  parser.end();
  assert.equal(rec.pieces.length, 32);
  for (let i = 0; i < 32; i++) assert.equal(rec.pieces[i], chunks[i]);
  assert.equal(rec.members[0]!.size, 32 * chunk);
});

test('paths: "./" skipped, "././x" and trailing slashes normalised, ".." and absolute paths reported as is', () => {
  const archive = Buffer.concat([
    member({ name: './', type: '5' }),
    member({ name: '.', type: '5' }),
    member({ name: '././x//', type: '5', mode: 0o700 }),
    member({ name: '../escape' }, Buffer.from('e')),
    member({ name: '/etc/passwd' }, Buffer.from('p')),
    EOA,
  ]);
  const got = assertEverySplit(archive);
  assert.deepEqual(got.members.map((m) => m.path), ['x', '../escape', '/etc/passwd']);
});

test('typeflag 7 (contiguous) is a file; NUL typeflag is a file; global pax header is ignored', () => {
  const global = Buffer.from(paxRecord('comment', 'c'.repeat(600)));
  const nul = ustar({ name: 'nul-type', size: 3 });
  nul[156] = 0;
  // Recompute the checksum after clearing the typeflag.
  nul.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of nul) sum += x;
  nul.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const archive = Buffer.concat([
    member({ name: 'pax_global_header', type: 'g' }, global),
    member({ name: 'contig', type: '7' }, Buffer.from('abc')),
    nul, Buffer.from('xyz'), Buffer.alloc(509),
    EOA,
  ]);
  const got = assertEverySplit(archive);
  assert.deepEqual(got.members.map((m) => [m.path, m.kind, m.data.toString()]), [['contig', 'file', 'abc'], ['nul-type', 'file', 'xyz']]);
});

test('pax size override and base-256 size', () => {
  const b256 = Buffer.alloc(12);
  b256[0] = 0x80;
  b256.writeUInt32BE(1000, 8);
  const archive = Buffer.concat([
    member({ name: 'PaxHeaders/sized', type: 'x' }, Buffer.from(paxRecord('size', '700'))),
    ustar({ name: 'sized', size: 1 }), pattern(700, 11), Buffer.alloc(324),
    ustar({ name: 'b256', rawSize: b256 }), pattern(1000, 12), Buffer.alloc(24),
    EOA,
  ]);
  const got = assertEverySplit(archive);
  assert.deepEqual(got.members.map((m) => [m.path, m.size]), [['sized', 700], ['b256', 1000]]);
  assert.deepEqual(got.members[1]!.data, pattern(1000, 12));
});

test('base-256 size over 8 GiB: entry reports it, end() reports the truncation', () => {
  const b256 = Buffer.alloc(12);
  b256[0] = 0x80;
  b256.writeUIntBE(10 * 1024 ** 3, 6, 6);
  const archive = Buffer.concat([ustar({ name: 'base/1/huge', rawSize: b256 }), Buffer.alloc(100)]);
  expectFailure(archive, [300], { archiveName: 'base.tar' }, 'truncated tar archive "base.tar": member "base/1/huge" has 100 of 10737418240 bytes');
});

test('truncated mid-data names the member and the byte counts', () => {
  const archive = Buffer.concat([member({ name: 'a' }, Buffer.from('a')), member({ name: 'x' }, pattern(8192, 13))]);
  const cut = archive.subarray(0, 1024 + 512 + 100);
  for (let i = 0; i <= cut.length; i += 37) {
    expectFailure(cut, [i], { archiveName: 'base.tar' }, 'truncated tar archive "base.tar": member "x" has 100 of 8192 bytes');
  }
  expectFailure(cut, [], {}, 'truncated tar archive: member "x" has 100 of 8192 bytes');
});

test('truncated mid-header names the member when its name arrived, else the one before', () => {
  const archive = Buffer.concat([member({ name: 'first' }, Buffer.from('1')), member({ name: 'base/1/123' }, Buffer.from('2'))]);
  expectFailure(archive.subarray(0, 1024 + 200), [1100], { archiveName: 'base.tar' },
    'truncated tar archive "base.tar": the header of member "base/1/123" has 200 of 512 bytes');
  expectFailure(archive.subarray(0, 1024 + 5), [], { archiveName: 'base.tar' },
    'truncated tar archive "base.tar": the header after member "first" has 5 of 512 bytes');
  expectFailure(archive.subarray(0, 3), [], {}, 'truncated tar archive: the first header has 3 of 512 bytes');
});

test('truncated in padding, in a pax payload, or after a pax header', () => {
  const archive = member({ name: 'padded' }, Buffer.from('abc'));
  expectFailure(archive.subarray(0, 600), [], {}, 'truncated tar archive: member "padded" lacks 424 bytes of padding');
  const pax = member({ name: 'PaxHeaders/p', type: 'x' }, Buffer.from(paxRecord('path', 'p'.repeat(300))));
  expectFailure(pax.subarray(0, 600), [550], {}, /^truncated tar archive: extended header "PaxHeaders\/p" \(type 'x'\) has 88 of 3\d\d bytes$/);
  expectFailure(pax, [], {}, 'truncated tar archive: extended header "PaxHeaders/p" is not followed by a member');
  expectFailure(Buffer.concat([pax, EOA]), [], {}, 'tar archive: extended header "PaxHeaders/p" is not followed by a member');
});

test('bad header checksum names the member, the offset and the archive', () => {
  const archive = Buffer.concat([member({ name: 'ok' }, Buffer.from('ok')), member({ name: 'base/1/123', badChecksum: true }, Buffer.from('x'))]);
  for (const cuts of [[], [1000], [1100]]) {
    expectFailure(archive, cuts, { archiveName: 'base.tar' },
      'tar header checksum mismatch for member "base/1/123" at offset 1024 of tar archive "base.tar"');
  }
});

test('unsupported member types name the member and the type', () => {
  const cases: Array<[string, string]> = [['1', 'hard link'], ['3', 'character device'], ['4', 'block device'], ['6', 'FIFO'], ['V', "type 'V'"]];
  for (const [type, what] of cases) {
    const archive = Buffer.concat([member({ name: `./dev/${type}/`, type, linkname: 'other' }), EOA]);
    expectFailure(archive, [], { archiveName: '16385.tar' }, `unsupported tar member "dev/${type}" in tar archive "16385.tar": ${what}`);
  }
});

test('pax and long-name payloads over 1 MiB are rejected at their header', () => {
  for (const type of ['x', 'L', 'K']) {
    const h = ustar({ name: 'big-meta', type, size: 1024 * 1024 + 1 });
    expectFailure(h, [], {}, `extended header "big-meta" (type '${type}') of 1048577 bytes exceeds 1048576 bytes in tar archive`);
  }
});

test('malformed pax payload names the pax header and the archive', () => {
  const archive = Buffer.concat([member({ name: 'PaxHeaders/bad', type: 'x' }, Buffer.from('99 path=x\n')), member({ name: 'f' }), EOA]);
  expectFailure(archive, [], { archiveName: 'base.tar' }, /pax record .* in pax header "PaxHeaders\/bad" of tar archive "base.tar"$/);
  const badSize = Buffer.concat([member({ name: 'PaxHeaders/s', type: 'x' }, Buffer.from(paxRecord('size', '12x'))), member({ name: 'f' }), EOA]);
  expectFailure(badSize, [], {}, 'invalid pax size "12x" in pax header "PaxHeaders/s" of tar archive');
});

test('end marker: one zero block then end of input is accepted; zeros after it are ignored', () => {
  const archive = Buffer.concat([member({ name: 'a' }, Buffer.from('a')), Buffer.alloc(512)]);
  const got = assertEverySplit(archive, { requireEndMarker: true });
  assert.equal(got.ended, true);
  assert.equal(got.members.length, 1);
  assert.equal(assertEverySplit(Buffer.concat([archive, Buffer.alloc(9728)]), { requireEndMarker: true }).members.length, 1);
});

test('non-zero bytes after the end marker are an error, wherever the split', () => {
  const archive = Buffer.concat([member({ name: 'a' }, Buffer.from('a')), EOA, Buffer.alloc(100), Buffer.from([7]), Buffer.alloc(10)]);
  for (const cuts of [[], [1024], [1024 + 1024 + 100], [2148]]) {
    expectFailure(archive, cuts, { archiveName: 'base.tar' }, 'unexpected data at offset 2148 after the end-of-archive marker of tar archive "base.tar"');
  }
  // A lone zero block followed by another member is data after the marker too.
  const lone = Buffer.concat([member({ name: 'a' }), Buffer.alloc(512), member({ name: 'b' })]);
  expectFailure(lone, [], {}, 'unexpected data at offset 1024 after the end-of-archive marker of tar archive');
});

test('an error leaves the parser failed: later write() and end() rethrow it', () => {
  const parser = new TarParser({ entry() {}, data() {}, entryEnd() {} });
  const bad = ustar({ name: 'oops', badChecksum: true });
  let first: unknown;
  try {
    parser.write(bad);
  } catch (err) {
    first = err;
  }
  assert.ok(first instanceof TarFormatError);
  assert.throws(() => parser.write(Buffer.alloc(512)), (err) => err === first);
  assert.throws(() => parser.end(), (err) => err === first);
});

test('handler errors propagate out of write()', () => {
  const boom = new Error('disk full');
  const parser = new TarParser({ entry() {}, data() { throw boom; }, entryEnd() {} });
  assert.throws(() => parser.write(member({ name: 'f' }, Buffer.from('data'))), (err) => err === boom);
});

test('empty writes are harmless; write() after end() is a usage error', () => {
  const rec = new Recorder(Buffer.alloc(0));
  const parser = new TarParser(rec);
  parser.write(Buffer.alloc(0));
  parser.end();
  assert.equal(parser.ended, false);
  assert.throws(() => parser.write(Buffer.alloc(1)), /after end/);
});

test('pax global header: records reach globalHeader, members are unaffected (GNU tar --pax-option)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-gtar-'));
  try {
    writeFileSync(join(dir, 'a'), 'hello');
    const archive = execFileSync('tar', ['--format=pax', '--pax-option=comment=pgbb descriptor', '-C', dir, '-cf', '-', 'a']);
    for (let split = 0; split <= archive.length; split += 97) {
      const globals: Record<string, string>[] = [];
      const names: string[] = [];
      let data = '';
      const p = new TarParser({
        entry: (m) => names.push(m.path),
        data: (c) => (data += c.toString()),
        entryEnd: () => {},
        globalHeader: (r) => globals.push(r),
      });
      p.write(archive.subarray(0, split));
      p.write(archive.subarray(split));
      p.end();
      assert.deepEqual(globals, [{ comment: 'pgbb descriptor' }], `split ${split}`);
      assert.deepEqual(names, ['a']);
      assert.equal(data, 'hello');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- fuzz regressions and raw names

test('non-UTF-8 member names and link targets come out losslessly (src/codec/path-bytes.ts), in the name field, the prefix, GNU L/K and pax', () => {
  const raw = (b: number[]) => Buffer.from(b);
  const nameBytes = Buffer.concat([Buffer.from('base/'), raw([0xff, 0xfe]), Buffer.from('x')]);
  const header = ustar({ name: 'placeholder' });
  header.fill(0, 0, 100);
  nameBytes.copy(header, 0);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of header) sum += x;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const longName = Buffer.concat([Buffer.from('d'.repeat(150) + '/'), raw([0xc3, 0x28])]);
  const longLink = Buffer.concat([Buffer.from('/t/'), raw([0x80]), Buffer.from('t'.repeat(120))]);
  const paxPath = Buffer.concat([Buffer.from('p/'), raw([0xed, 0xa0, 0x80])]);
  const pax = (key: string, v: Buffer) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), v, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len++;
    return Buffer.concat([Buffer.from(String(len)), body]);
  };
  const archive = Buffer.concat([
    header,
    member({ name: '././@LongLink', type: 'L' }, Buffer.concat([longName, Buffer.alloc(1)])),
    member({ name: '././@LongLink', type: 'K' }, longLink),
    member({ name: 'short', type: '2', linkname: 'x' }),
    member({ name: 'PaxHeaders/p', type: 'x' }, Buffer.concat([pax('hdrcharset', Buffer.from('BINARY')), pax('path', paxPath)])),
    member({ name: 'ignored' }, Buffer.from('pax')),
    EOA,
  ]);
  const { members } = assertEverySplit(archive);
  assert.deepEqual(members.map((m) => pathToBytes(m.path).toString('hex')), [nameBytes, longName, paxPath].map((b) => b.toString('hex')));
  assert.equal(members[0].path, 'base/\udcff\udcfex');
  assert.equal(pathToBytes(members[1].linkTarget!).toString('hex'), longLink.toString('hex'));
});

test('a GNU long name holding a NUL ends at it, as GNU tar reads it; a pax path with a NUL is an error (fuzz regression)', () => {
  const l = Buffer.concat([member({ name: '././@LongLink', type: 'L' }, Buffer.from('real-name\0garbage after the NUL\0')), member({ name: 'short' }, Buffer.from('x')), EOA]);
  assert.equal(parse(l).members[0].path, 'real-name');
  const p = Buffer.concat([member({ name: 'PaxHeaders/n', type: 'x' }, Buffer.from(paxRecord('path', 'a\0b'))), member({ name: 'f' }), EOA]);
  expectFailure(p, [], {}, 'pax path "a\\x00b" contains a NUL byte in pax header "PaxHeaders/n" of tar archive');
});

test('an mtime beyond what a Date holds is a TarFormatError, not an Invalid Date (fuzz regression)', () => {
  // A pax mtime of 10^20 seconds (or a base-256 field) used to become an Invalid
  // Date, which later stages turned into RangeErrors.
  const pax = Buffer.concat([member({ name: 'PaxHeaders/m', type: 'x' }, Buffer.from(paxRecord('mtime', '100000000000000000000'))), member({ name: 'f' }), EOA]);
  expectFailure(pax, [], { archiveName: 'base.tar' }, 'mtime 100000000000000000000 of member "f" in tar archive "base.tar" is out of range');
});

test('messages show control characters and raw bytes in names as \\xNN, and non-printable type bytes in hex (fuzz regression)', () => {
  // A newline from a corrupt name or type byte used to split the one-line error.
  const archive = Buffer.concat([member({ name: 'bad\nname', type: '\n' }), EOA]);
  expectFailure(archive, [], { archiveName: 'base.tar' }, 'unsupported tar member "bad\\x0aname" in tar archive "base.tar": type 0x0a');
  const bad = ustar({ name: 'x\ty', badChecksum: true });
  expectFailure(bad, [], {}, 'tar header checksum mismatch for member "x\\x09y" at offset 0 of tar archive');
});
