/**
 * manifestVerify on synthetic member streams: a correct backup passes with
 * every event unchanged; a flipped byte, a wrong size, a missing file and an
 * extra file each fail naming the file, all at once in one error, and `end`
 * never reaches the sink after a failure.
 */
import { test } from 'node:test';
import * as crc32c from 'fast-crc32c';
import assert from 'node:assert/strict';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../../src/events';
import { ManifestError } from '../../src/errors';
import { buildManifest, crc32cHex, type ChecksumAlgorithm } from '../../src/codec/manifest';
import { manifestVerify } from '../../transforms/manifest-verify';
import { createHash } from 'node:crypto';


interface FileSpec {
  path: string;
  data: Buffer;
}

const MTIME = new Date('2025-03-01T10:00:00Z');
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

const BASE: FileSpec[] = [
  { path: 'backup_label', data: Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n') },
  { path: 'PG_VERSION', data: Buffer.from('15\n') },
  { path: 'base/5/16390', data: bytes(40_000, 1) },
  { path: 'base/5/16391', data: Buffer.alloc(0) },
  { path: 'pg_wal/000000010000000000000002', data: bytes(3000, 2) },
  { path: 'pg_wal/archive_status/000000010000000000000002.done', data: Buffer.alloc(0) },
  { path: 'global/pg_control', data: bytes(8192, 3) },
];
const TABLESPACE: FileSpec[] = [{ path: 'PG_15_202209061/5/16393', data: bytes(9000, 4) }];

/** Files as the manifest lists them (tablespace under pg_tblspc/<oid>/, no WAL segment). */
function listed(base = BASE, ts = TABLESPACE): FileSpec[] {
  return [...ts.map((f) => ({ ...f, path: `pg_tblspc/16384/${f.path}` })), ...base.filter((f) => !/^pg_wal\/[0-9A-F]{24}$/.test(f.path))];
}

function digest(alg: ChecksumAlgorithm, data: Buffer): string {
  return alg === 'CRC32C' ? crc32cHex(crc32c.calculate(data)) : createHash(alg.toLowerCase()).update(data).digest('hex');
}

function manifestFor(files: FileSpec[], opts: { alg?: ChecksumAlgorithm; sizeDelta?: Record<string, number>; systemIdentifier?: string; endLsn?: string } = {}): Buffer {
  const alg = opts.alg ?? 'CRC32C';
  return buildManifest({
    version: opts.systemIdentifier ? 2 : 1,
    systemIdentifier: opts.systemIdentifier,
    files: files.map((f) => ({ path: f.path, size: f.data.length + (opts.sizeDelta?.[f.path] ?? 0), lastModified: MTIME, checksumAlgorithm: alg, checksum: digest(alg, f.data) })),
    walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: opts.endLsn ?? '0/2000100' }],
  });
}

/** A member stream as ReplicationSource emits it, data cut into `chunk`-byte events. */
function backup(opts: { base?: FileSpec[]; ts?: FileSpec[]; manifest?: Buffer | null; chunk?: number } = {}): BackupEvent[] {
  const chunk = opts.chunk ?? 4096;
  const out: BackupEvent[] = [
    {
      type: 'start', serverVersion: 150018, systemIdentifier: '7710713033429169987', timeline: 1, startLsn: '0/2000028',
      tablespaces: [{ oid: '16384', location: '/ts', size: null }, { oid: null, location: '', size: null }],
      walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes: null,
    },
  ];
  const files = (list: FileSpec[]) => {
    for (const f of list) {
      out.push({ type: 'entry', path: f.path, kind: 'file', size: f.data.length, mode: 0o600, mtime: MTIME });
      for (let off = 0; off < f.data.length; off += chunk) out.push({ type: 'data', offset: off, chunk: f.data.subarray(off, off + chunk) });
      out.push({ type: 'entry-end' });
    }
  };
  out.push({ type: 'archive', kind: 'tablespace', name: '16384', location: '/ts' });
  out.push({ type: 'entry', path: 'PG_15_202209061', kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }, { type: 'entry-end' });
  files(opts.ts ?? TABLESPACE);
  out.push({ type: 'archive-end' }, { type: 'archive', kind: 'base', name: 'base', location: '' });
  out.push({ type: 'entry', path: 'base', kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }, { type: 'entry-end' });
  out.push({ type: 'entry', path: 'pg_tblspc/16384', kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: '/ts' }, { type: 'entry-end' });
  files(opts.base ?? BASE);
  out.push({ type: 'archive-end' }, { type: 'progress', done: 1, total: null });
  if (opts.manifest !== null) out.push({ type: 'manifest', data: opts.manifest ?? manifestFor(listed(opts.base, opts.ts)) });
  out.push({ type: 'end', endLsn: '0/2000100', timeline: 1 });
  return out;
}

async function run(t: Transform, events: BackupEvent[]): Promise<{ out: BackupEvent[]; err?: Error }> {
  const out: BackupEvent[] = [];
  const sink = new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (out.push(ev), cb()) });
  try {
    await pipeline(Readable.from(events), t, sink);
    return { out };
  } catch (err) {
    return { out, err: err as Error };
  }
}

function flipped(list: FileSpec[], path: string, at: number): FileSpec[] {
  return list.map((f) => {
    if (f.path !== path) return f;
    const data = Buffer.from(f.data);
    data[at] ^= 0x01;
    return { ...f, data };
  });
}

test('a correct backup passes: every event unchanged and in order, result counts the listed files', async () => {
  const events = backup({ chunk: 1000 });
  const v = manifestVerify();
  const { out, err } = await run(v, events);
  assert.equal(err, undefined);
  assert.equal(out.length, events.length);
  out.forEach((ev, i) => assert.equal(ev, events[i]));
  const total = listed().reduce((n, f) => n + f.data.length, 0);
  assert.deepEqual(v.result, { files: 7, leftAlone: 0, bytes: total, checked: true });
});

test('a flipped byte fails naming the file, and end never passes', async () => {
  const good = manifestFor(listed());
  const { out, err } = await run(manifestVerify(), backup({ base: flipped(BASE, 'base/5/16390', 33_333), manifest: good }));
  assert.ok(err instanceof ManifestError, String(err));
  assert.match(err.message, /^backup does not match its manifest: "base\/5\/16390" has CRC32C [0-9a-f]{8} in the backup but [0-9a-f]{8} in the manifest$/);
  assert.ok(!out.some((e) => e.type === 'end'), 'end reached the sink');
  assert.ok(out.some((e) => e.type === 'manifest'), 'the failure came at end, after the manifest passed');
});

test('wrong size, missing file, extra file: each named', async () => {
  const size = await run(manifestVerify(), backup({ manifest: manifestFor(listed(), { sizeDelta: { 'global/pg_control': 1 } }) }));
  assert.match(String(size.err), /"global\/pg_control" has size 8192 in the backup but 8193 in the manifest/);

  const missing = await run(manifestVerify(), backup({ base: BASE.filter((f) => f.path !== 'PG_VERSION'), manifest: manifestFor(listed()) }));
  assert.match(String(missing.err), /"PG_VERSION" is in the manifest but not in the backup/);

  const extraFile = { path: 'base/5/99999', data: Buffer.from('new') };
  const extra = await run(manifestVerify(), backup({ base: [...BASE, extraFile], manifest: manifestFor(listed()) }));
  assert.match(String(extra.err), /"base\/5\/99999" is in the backup but not in the manifest/);
  for (const r of [size, missing, extra]) {
    assert.ok(r.err instanceof ManifestError);
    assert.ok(!r.out.some((e) => e.type === 'end'));
  }
});

test('problems are collected and reported once, capped with "and N more"', async () => {
  const base = [...flipped(BASE, 'backup_label', 0), { path: 'base/5/1', data: Buffer.from('a') }, { path: 'base/5/2', data: Buffer.from('b') }].filter(
    (f) => f.path !== 'PG_VERSION',
  );
  const ts = flipped(TABLESPACE, 'PG_15_202209061/5/16393', 8999);
  const all = await run(manifestVerify(), backup({ base, ts, manifest: manifestFor(listed()) }));
  const msg = String(all.err);
  for (const p of ['pg_tblspc/16384/PG_15_202209061/5/16393', 'backup_label', 'PG_VERSION', 'base/5/1', 'base/5/2']) assert.ok(msg.includes(`"${p}"`), `${p} in ${msg}`);
  const capped = await run(manifestVerify({ maxListed: 2 }), backup({ base, ts, manifest: manifestFor(listed()) }));
  assert.match(String(capped.err), /; and 3 more$/);
});

test('tablespace files are checked under pg_tblspc/<oid>/; WAL segments and unlisted pg_wal files are not', async () => {
  const extraStatus = { path: 'pg_wal/archive_status/000000010000000000000003.done', data: Buffer.alloc(0) };
  const v = manifestVerify();
  const { err } = await run(v, backup({ base: [...BASE, extraStatus], manifest: manifestFor(listed()) }));
  assert.equal(err, undefined);
  assert.equal(v.result?.files, 7);
});

test('a manifest given up front, with SHA256 checksums, is used instead of the stream\'s', async () => {
  const sha = manifestFor(listed(), { alg: 'SHA256' });
  const ok = manifestVerify({ manifest: sha });
  assert.equal((await run(ok, backup({ manifest: null }))).err, undefined);
  assert.deepEqual(ok.result?.checked, true);
  const bad = await run(manifestVerify({ manifest: sha }), backup({ base: flipped(BASE, 'global/pg_control', 5), manifest: null }));
  assert.match(String(bad.err), /"global\/pg_control" has SHA256 [0-9a-f]{64} in the backup but [0-9a-f]{64} in the manifest/);
});

test('a late manifest with another algorithm than the one computed is an error, unless told', async () => {
  const events = backup({ manifest: manifestFor(listed(), { alg: 'SHA512' }) });
  assert.match(String((await run(manifestVerify(), events)).err), /the manifest's checksums are SHA512 but CRC32C was computed/);
  assert.equal((await run(manifestVerify({ checksumAlgorithm: 'SHA512' }), events)).err, undefined);
  assert.throws(() => manifestVerify({ checksumAlgorithm: 'MD5' as ChecksumAlgorithm }), /invalid manifest checksum algorithm "MD5"/);
});

test('without a manifest nothing is compared (checked: false), unless required', async () => {
  const v = manifestVerify();
  assert.equal((await run(v, backup({ manifest: null }))).err, undefined);
  assert.equal(v.result?.checked, false);
  assert.equal(v.result?.files, 7);
  const r = await run(manifestVerify({ require: true }), backup({ manifest: null }));
  assert.match(String(r.err), /no backup_manifest to verify the backup against/);
});

test('a manifest that fails its own checksum fails as it arrives', async () => {
  const m = Buffer.from(manifestFor(listed()));
  m[m.indexOf('"Size": ') + 8] ^= 0x01;
  const { out, err } = await run(manifestVerify(), backup({ manifest: m }));
  assert.ok(err instanceof ManifestError);
  assert.match(err.message, /manifest checksum mismatch/);
  assert.ok(!out.some((e) => e.type === 'manifest' || e.type === 'end'));
});

test('a manifest from another system or another backup end is reported', async () => {
  const other = await run(manifestVerify(), backup({ manifest: manifestFor(listed(), { systemIdentifier: '1234' }) }));
  assert.match(String(other.err), /the manifest is for system 1234, the server is 7710713033429169987/);
  const lsn = await run(manifestVerify(), backup({ manifest: manifestFor(listed(), { endLsn: '0/3000000' }) }));
  assert.match(String(lsn.err), /the manifest's WAL ends at 0\/3000000 on timeline 1, the backup at 0\/2000100 on timeline 1/);
});

test('data out of order cannot be checksummed and fails at once', async () => {
  const events = backup();
  const i = events.findIndex((e) => e.type === 'data' && e.offset > 0);
  const bad = events.filter((_, j) => j !== i);
  const { err } = await run(manifestVerify(), bad);
  assert.match(String(err), /data for "[^"]+" at offset \d+, expected \d+/);
});

test('problems name non-UTF-8 and control-character paths on one line, as \\xNN (fuzz regression)', async () => {
  // A damaged stream gave member names with newlines, which split the one-line error.
  const manifest = buildManifest({ version: 1, files: [{ path: 'a\udcff', size: 1, lastModified: 'x' }], walRanges: [] });
  const events: BackupEvent[] = [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    { type: 'entry', path: 'b\nc', kind: 'file', size: 0, mode: 0o600, mtime: new Date() },
    { type: 'entry-end' },
    { type: 'archive-end' },
    { type: 'manifest', data: manifest },
    { type: 'end', endLsn: '0/0', timeline: 1 },
  ];
  await assert.rejects(
    pipeline(Readable.from(events, { objectMode: true }), manifestVerify(), new Writable({ objectMode: true, write: (_e, _c, cb) => cb() })),
    (e: Error) => {
      assert.equal(e.message, 'backup does not match its manifest: "a\\xff" is in the manifest but not in the backup; "b\\x0ac" is in the backup but not in the manifest');
      return true;
    },
  );
});

test('report mode: files at fault never fail the stream; every event passes and outcome() names each, bounded', async () => {
  const base = [...flipped(BASE, 'backup_label', 0), { path: 'base/5/1', data: Buffer.from('a') }].filter((f) => f.path !== 'PG_VERSION');
  const events = backup({ base, manifest: manifestFor(listed()) });
  const v = manifestVerify({ mode: 'report' });
  const { out, err } = await run(v, events);
  assert.equal(err, undefined);
  assert.equal(out.length, events.length);
  out.forEach((ev, i) => assert.equal(ev, events[i]));
  const o = v.outcome();
  assert.equal(o.check, 'manifest');
  assert.equal(o.more, 0);
  assert.deepEqual(o.problems.sort(), [
    'backup does not match its manifest: "PG_VERSION" is in the manifest but not in the backup',
    'backup does not match its manifest: "backup_label" has CRC32C ' + digest('CRC32C', base[0].data) + ' in the backup but ' + digest('CRC32C', BASE[0].data) + ' in the manifest',
    'backup does not match its manifest: "base/5/1" is in the backup but not in the manifest',
  ].sort());
  assert.equal(v.result?.checked, true);

  const capped = manifestVerify({ mode: 'report', maxListed: 1 });
  assert.equal((await run(capped, events)).err, undefined);
  assert.equal(capped.outcome().problems.length, 1);
  assert.equal(capped.outcome().more, 2);
});

test('report mode: a manifest failing its checksum, or none when required, is a problem, not a failure', async () => {
  const m = Buffer.from(manifestFor(listed()));
  m[m.indexOf('"Size": ') + 8] ^= 0x01;
  const v = manifestVerify({ mode: 'report', require: true });
  const { out, err } = await run(v, backup({ manifest: m }));
  assert.equal(err, undefined);
  assert.ok(out.some((e) => e.type === 'manifest') && out[out.length - 1].type === 'end');
  assert.equal(v.outcome().problems.length, 1);
  assert.match(v.outcome().problems[0], /^backup_manifest: manifest checksum mismatch/);
  assert.equal(v.result?.checked, false);

  const none = manifestVerify({ mode: 'report', require: true });
  assert.equal((await run(none, backup({ manifest: null }))).err, undefined);
  assert.deepEqual(none.outcome(), { check: 'manifest', problems: ['no backup_manifest to verify the backup against'], more: 0 });
});

test('fail mode: outcome() after the failure holds what the error named; a clean backup has no problems', async () => {
  const v = manifestVerify();
  const { err } = await run(v, backup({ base: flipped(BASE, 'base/5/16390', 3), manifest: manifestFor(listed()) }));
  assert.ok(err instanceof ManifestError);
  assert.equal(v.outcome().problems.length, 1);
  assert.equal(v.outcome().problems[0], err.message);
  const ok = manifestVerify({ mode: 'report' });
  await run(ok, backup());
  assert.deepEqual(ok.outcome(), { check: 'manifest', problems: [], more: 0 });
  assert.throws(() => manifestVerify({ mode: 'loud' as 'fail' }), /invalid manifest verifier mode "loud"/);
});

/** The manifest cut into `n` pieces, as `manifest` events. */
function inPieces(m: Buffer, n: number): BackupEvent[] {
  const size = Math.ceil(m.length / n);
  const out: BackupEvent[] = [];
  for (let at = 0; at < m.length; at += size) out.push({ type: 'manifest', data: m.subarray(at, at + size) });
  return out;
}

test('a manifest in pieces: each piece passes once the next has come, the last after end checked it; entries compared as they stream', async () => {
  const m = manifestFor(listed());
  const pieces = inPieces(m, 4);
  const events = backup({ manifest: null });
  const endEv = events.pop()!;
  const v = manifestVerify();
  const out: BackupEvent[] = [];
  v.on('data', (ev: BackupEvent) => out.push(ev));
  const write = (ev: BackupEvent) => new Promise<void>((res, rej) => v.write(ev, (err) => (err ? rej(err) : res())));
  for (const ev of events) await write(ev);
  for (let i = 0; i < pieces.length; i++) {
    await write(pieces[i]);
    await new Promise((r) => setImmediate(r));
    const passed = out.filter((e) => e.type === 'manifest');
    assert.equal(passed.length, i, `after piece ${i + 1}, ${i} passed`);
  }
  await write(endEv);
  v.end();
  await new Promise((r) => v.on('end', r));
  assert.deepEqual(out.filter((e) => e.type === 'manifest'), pieces);
  assert.equal(out[out.length - 1], endEv);
  assert.deepEqual(v.result, { files: 7, leftAlone: 0, bytes: listed().reduce((n, f) => n + f.data.length, 0), checked: true });

  // The same file problems as whole, and a bad checksum in the last piece keeps that piece back.
  const flippedRun = await run(manifestVerify(), [...backup({ base: flipped(BASE, 'base/5/16390', 5), manifest: null }).slice(0, -1), ...inPieces(m, 5), endEv]);
  assert.match(String(flippedRun.err), /^ManifestError: backup does not match its manifest: "base\/5\/16390" has CRC32C/);
  const bad = Buffer.from(m);
  bad[bad.indexOf('"Size": ') + 8] ^= 0x01;
  const badRun = await run(manifestVerify(), [...events, ...inPieces(bad, 3), endEv]);
  assert.match(String(badRun.err), /manifest checksum mismatch/);
  assert.equal(badRun.out.filter((e) => e.type === 'manifest').length, 2, 'the last piece never passed');
  assert.ok(!badRun.out.some((e) => e.type === 'end'));
});

test('report mode, a manifest in pieces that does not parse: every piece passes, in order, and the fault is the one problem', async () => {
  const m = Buffer.from(manifestFor(listed()));
  m[m.indexOf('"Size": ') + 8] = 0xff; // not UTF-8: refused as it arrives
  const events = backup({ manifest: null });
  const endEv = events.pop()!;
  const pieces = inPieces(m, 3);
  const v = manifestVerify({ mode: 'report' });
  const r = await run(v, [...events, ...pieces, endEv]);
  assert.equal(r.err, undefined);
  assert.deepEqual(r.out.filter((e) => e.type === 'manifest'), pieces);
  assert.deepEqual(v.outcome().problems, ['backup_manifest: not valid UTF-8']);
});

test('failFast with listed sizes read ahead: files seen are recorded in that table (no second one), with the same verdicts as without it', async () => {
  const { FileTable } = await import('../../src/codec/file-table');
  const table = (files: FileSpec[]) => {
    const t = new FileTable(0);
    for (const f of files) t.setSize(t.add(f.path).index, f.data.length);
    return t;
  };
  const dupOf = (path: string) => {
    const files = listed();
    return manifestFor([...files, files.find((f) => f.path === path)!]);
  };
  const twice = BASE.find((f) => f.path === 'PG_VERSION')!;
  const cases: Array<[string, BackupEvent[]]> = [
    ['correct', backup()],
    ['missing', backup({ base: BASE.filter((f) => f.path !== 'PG_VERSION') })],
    ['flipped', backup({ base: flipped(BASE, 'base/5/16390', 17) })],
    ['a listed-twice missing file', backup({ base: BASE.filter((f) => f.path !== 'PG_VERSION'), manifest: dupOf('PG_VERSION') })],
    ['a listed-twice present file', backup({ manifest: dupOf('backup_label') })],
    ['a file twice in the backup', backup({ base: [...BASE, twice] })],
  ];
  for (const [what, events] of cases) {
    const plain = manifestVerify();
    const expected = await run(plain, events);
    const t = table(listed());
    const ahead = manifestVerify({ failFast: true, listedSizes: t, checksumAlgorithm: 'CRC32C' });
    const got = await run(ahead, events);
    assert.equal(String(got.err), String(expected.err), what);
    assert.deepEqual(ahead.result, plain.result, what);
    // One table: the listed one took the digests, and every file seen was listed (WAL segments are not recorded).
    assert.equal(t.digestBytes, 4, what);
    assert.equal(t.count, listed().length, what);
  }
});
