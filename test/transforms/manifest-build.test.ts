/**
 * manifestBuild on synthetic member streams: the manifest written byte for
 * byte (expected text spelled out here, sealed with SHA-256 here), which
 * members are listed, version 1 vs 2 by server version, replacing or keeping
 * an upstream manifest, WAL-Ranges across a timeline switch, and a built
 * manifest that manifestVerify accepts.
 */
import { test } from 'node:test';
import * as crc32c from 'fast-crc32c';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent, StartEvent } from '../../src/events';
import { ManifestError } from '../../src/errors';
import { parseManifest } from '../../src/codec/manifest';
import { manifestBuild } from '../../transforms/manifest-build';
import { manifestVerify } from '../../transforms/manifest-verify';

/** PostgreSQL's byte order, computed here without the codec. */
const crcHex = (b: Buffer) => {
  const x = crc32c.calculate(b);
  return [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24].map((v) => v.toString(16).padStart(2, '0')).join('');
};

const T1 = new Date('2025-03-01T10:00:01Z');
const T2 = new Date('2025-03-01T10:00:05.750Z');
const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: x\n');
const rel = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 13) & 0xff));
const control = Buffer.alloc(8192, 7);
const tsFile = Buffer.alloc(8192, 9);

type Member = { path: string; kind?: 'file' | 'directory' | 'symlink'; data?: Buffer; mtime?: Date };

function start(serverVersion = 150018, timeline = 1): StartEvent {
  return {
    type: 'start', serverVersion, systemIdentifier: '7710713033429169987', timeline, startLsn: '0/2000028',
    tablespaces: [{ oid: '16384', location: '/ts', size: null }, { oid: null, location: '', size: null }],
    walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes: null,
  };
}

function stream(opts: { serverVersion?: number; base?: Member[]; upstream?: Buffer; endTli?: number; startTli?: number } = {}): BackupEvent[] {
  const out: BackupEvent[] = [start(opts.serverVersion, opts.startTli)];
  const members = (list: Member[]) => {
    for (const m of list) {
      const data = m.data ?? Buffer.alloc(0);
      out.push({ type: 'entry', path: m.path, kind: m.kind ?? 'file', size: data.length, mode: 0o600, mtime: m.mtime ?? T1 });
      for (let off = 0; off < data.length; off += 3000) out.push({ type: 'data', offset: off, chunk: data.subarray(off, off + 3000) });
      out.push({ type: 'entry-end' });
    }
  };
  out.push({ type: 'archive', kind: 'tablespace', name: '16384', location: '/ts' });
  members([{ path: 'PG_15_202209061', kind: 'directory' }, { path: 'PG_15_202209061/5/16393', data: tsFile }]);
  out.push({ type: 'archive-end' }, { type: 'archive', kind: 'base', name: 'base', location: '' });
  members(
    opts.base ?? [
      { path: 'backup_label', data: label, mtime: T2 },
      { path: 'base', kind: 'directory' },
      { path: 'base/5/16390', data: rel },
      { path: 'pg_tblspc/16384', kind: 'symlink' },
      { path: 'pg_wal', kind: 'directory' },
      { path: 'pg_wal/000000010000000000000002', data: Buffer.alloc(5000, 1) },
      { path: 'pg_wal/archive_status/000000010000000000000002.done', mtime: T2 },
      { path: 'global/pg_control', data: control, mtime: T2 },
    ],
  );
  out.push({ type: 'archive-end' });
  if (opts.upstream) out.push({ type: 'manifest', data: opts.upstream });
  out.push({ type: 'end', endLsn: '0/2000100', timeline: opts.endTli ?? 1 });
  return out;
}

async function run(t: Transform | Transform[], events: BackupEvent[]): Promise<{ out: BackupEvent[]; err?: Error }> {
  const out: BackupEvent[] = [];
  const sink = new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (out.push(ev), cb()) });
  try {
    await pipeline([Readable.from(events), ...(Array.isArray(t) ? t : [t]), sink]);
    return { out };
  } catch (err) {
    return { out, err: err as Error };
  }
}

function sealed(body: string): string {
  return `${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`;
}

test('PostgreSQL 15 stream: the manifest PostgreSQL would send, byte for byte, right before end', async () => {
  const b = manifestBuild();
  const events = stream();
  const { out, err } = await run(b, events);
  assert.equal(err, undefined);
  const f = (path: string, data: Buffer, lm: string) =>
    `{ "Path": "${path}", "Size": ${data.length}, "Last-Modified": "${lm}", "Checksum-Algorithm": "CRC32C", "Checksum": "${crcHex(data)}" }`;
  const expected = sealed(
    '{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n' +
      [
        f('pg_tblspc/16384/PG_15_202209061/5/16393', tsFile, '2025-03-01 10:00:01 GMT'),
        f('backup_label', label, '2025-03-01 10:00:05 GMT'),
        f('base/5/16390', rel, '2025-03-01 10:00:01 GMT'),
        f('pg_wal/archive_status/000000010000000000000002.done', Buffer.alloc(0), '2025-03-01 10:00:05 GMT'),
        f('global/pg_control', control, '2025-03-01 10:00:05 GMT'),
      ].join(',\n') +
      '\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n',
  );
  assert.equal(out.length, events.length + 1);
  const m = out[out.length - 2];
  assert.equal(m.type, 'manifest');
  assert.equal(m.type === 'manifest' && m.data.toString(), expected);
  assert.equal(out[out.length - 1], events[events.length - 1], 'end passes after it');
  out.slice(0, -2).forEach((ev, i) => assert.equal(ev, events[i]));
  assert.equal(b.result?.built, true);
  assert.equal(b.result?.files, 5);
  assert.equal(b.result?.bytes, tsFile.length + label.length + rel.length + control.length);
  assert.equal(b.result?.manifest?.toString(), expected);
});

test('PostgreSQL 17 stream: version 2 with the System-Identifier; version can be forced', async () => {
  const v17 = manifestBuild();
  await run(v17, stream({ serverVersion: 170002 }));
  const text = v17.result!.manifest!.toString();
  assert.ok(text.startsWith('{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": 7710713033429169987,\n"Files": [\n'));
  assert.equal(parseManifest(v17.result!.manifest!).systemIdentifier, '7710713033429169987');
  const forced = manifestBuild({ version: 1 });
  await run(forced, stream({ serverVersion: 170002 }));
  assert.equal(parseManifest(forced.result!.manifest!).version, 1);
});

test('upstream manifest: replaced with replace: true, kept (and none built) otherwise', async () => {
  const upstream = Buffer.from('not even a manifest');
  const replaced = await run(manifestBuild({ replace: true }), stream({ upstream }));
  const ms = replaced.out.filter((e) => e.type === 'manifest');
  assert.equal(ms.length, 1);
  assert.notEqual(ms[0].type === 'manifest' && ms[0].data, upstream);
  assert.equal(parseManifest(ms[0].type === 'manifest' ? ms[0].data : Buffer.alloc(0)).files.size, 5);

  const kept = manifestBuild();
  const r = await run(kept, stream({ upstream }));
  const km = r.out.filter((e) => e.type === 'manifest');
  assert.equal(km.length, 1);
  assert.equal(km[0].type === 'manifest' && km[0].data, upstream);
  assert.equal(kept.result?.built, false);
});

test('SHA256 checksums, and the built manifest verifies against the same stream', async () => {
  const b = manifestBuild({ checksumAlgorithm: 'SHA256' });
  const v = manifestVerify({ checksumAlgorithm: 'SHA256' });
  const { err } = await run([b, v], stream());
  assert.equal(err, undefined);
  assert.deepEqual(v.result, { files: 5, leftAlone: 0, bytes: b.result!.bytes, checked: true });
  const f = parseManifest(b.result!.manifest!).files.get('base/5/16390');
  assert.equal(f?.checksum, createHash('sha256').update(rel).digest('hex'));
});

test('a backup across a timeline switch takes WAL-Ranges from the history file in the stream', async () => {
  const history = Buffer.from('1\t0/2000100\tno recovery target specified\n');
  const base: Member[] = [
    { path: 'backup_label', data: label },
    { path: 'pg_wal/00000002.history', data: history },
    { path: 'pg_wal/archive_status/00000002.history.done' },
    { path: 'global/pg_control', data: control },
  ];
  const b = manifestBuild();
  const { err } = await run(b, stream({ base, startTli: 1, endTli: 2 }));
  assert.equal(err, undefined);
  const m = parseManifest(b.result!.manifest!);
  assert.deepEqual(m.walRanges, [
    { timeline: 2, startLsn: '0/2000100', endLsn: '0/2000100' },
    { timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' },
  ]);
  assert.ok(m.files.has('pg_wal/00000002.history'));
  const missing = await run(manifestBuild(), stream({ base: base.filter((x) => !x.path.endsWith('.history')), endTli: 2 }));
  assert.ok(missing.err instanceof ManifestError);
  assert.match(missing.err.message, /pg_wal\/00000002\.history" was not seen/);
  assert.ok(!missing.out.some((e) => e.type === 'end'));
});

test('errors: no start event, a file twice, bad options', async () => {
  const noStart = await run(manifestBuild(), stream().slice(1));
  assert.match(String(noStart.err), /no start event/);
  const twice = await run(manifestBuild(), stream({ base: [{ path: 'a', data: Buffer.from('1') }, { path: 'a', data: Buffer.from('2') }] }));
  assert.match(String(twice.err), /"a" appears more than once/);
  assert.throws(() => manifestBuild({ checksumAlgorithm: 'MD5' as 'NONE' }), /invalid manifest checksum algorithm/);
  assert.throws(() => manifestBuild({ version: 3 as 1 }), /invalid manifest version 3/);
});

test('a large manifest is emitted in pieces of 256 KiB (the last shorter), which join to the manifest built', async () => {
  const { manifestBuild: mb } = await import('../../transforms/manifest-build');
  const events: BackupEvent[] = [
    { type: 'start', serverVersion: 150018, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028', tablespaces: [], walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes: null },
    { type: 'archive', kind: 'base', name: 'base', location: '' },
  ];
  for (let i = 0; i < 6000; i++) events.push({ type: 'entry', path: `base/5/${100000 + i}`, kind: 'file', size: 0, mode: 0o600, mtime: new Date(0) }, { type: 'entry-end' });
  events.push({ type: 'archive-end' }, { type: 'end', endLsn: '0/2000100', timeline: 1 });
  const b = mb();
  const { out } = await run(b, events);
  const pieces = out.filter((e) => e.type === 'manifest').map((e) => (e.type === 'manifest' ? e.data : Buffer.alloc(0)));
  assert.ok(pieces.length >= 3, `${pieces.length} pieces`);
  pieces.slice(0, -1).forEach((p) => assert.equal(p.length, 256 * 1024));
  assert.ok(pieces[pieces.length - 1].length <= 256 * 1024);
  assert.ok(Buffer.concat(pieces).equals(b.result!.manifest!));
  assert.equal(parseManifest(b.result!.manifest!).files.size, 6000);
});
