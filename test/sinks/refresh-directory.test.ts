/**
 * The refresh sink on synthetic backups in temp directories. The judge is a
 * fresh backup of the same stream written by the directory sink: after a
 * refresh the directory must be identical to it, file for file and byte for
 * byte (chunk map and manifest included), while writing only changed chunks.
 * Also: a failure at any point (mid-data, at each commit step) leaves the
 * directory marked incomplete with no manifest and no pg_control, and the
 * next refresh completes it; a file changed behind the map's back is read
 * again instead of trusted; a backup of another system is refused before
 * anything is written.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectorySink } from '../../sinks/directory';
import { RefreshDirectorySink } from '../../sinks/refresh-directory';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { chunkDiff } from '../../transforms/chunk-diff';
import { manifestBuild } from '../../transforms/manifest-build';
import { runPipeline } from '../../src/pipeline';
import { loadPriorState } from '../../src/refresh/prior-state';
import { CHUNK_MAP_FILE, decodeChunkMap } from '../../src/codec/chunkmap/chunk-map';
import { assertComplete, REFRESH_MARKER } from '../../src/io/refresh-marker';
import type { BackupEvent } from '../../src/events';
import { backupEvents, backupLabel, bytes, fakeControlFile, treeOf, type BackupSpec, type Member } from '../support/chunk-fixtures';

const C = 64 * 1024;
const roots: string[] = [];
after(async () => {
  for (const r of roots) await fs.rm(r, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const r = await fs.mkdtemp(path.join(tmpdir(), 'pgbb-refresh-sink-'));
  roots.push(r);
  return r;
}

function dirs(...names: string[]): Member[] {
  return names.map((path) => ({ path, kind: 'directory' as const }));
}

function v1(tsLocation: string): BackupSpec {
  return {
    startLsn: '0/2000028',
    base: [
      { path: 'backup_label', data: backupLabel('0/2000028') },
      { path: 'PG_VERSION', data: Buffer.from('15\n') },
      ...dirs('base', 'base/1', 'base/2', 'global', 'pg_wal', 'pg_wal/archive_status', 'pg_tblspc'),
      { path: 'base/1/100', data: bytes(5 * C + 300, 1) },
      { path: 'base/1/200', data: bytes(3 * C, 2) },
      { path: 'base/1/300', data: bytes(2 * C, 3) },
      { path: 'base/2/400', data: bytes(1000, 4) },
      { path: 'pg_tblspc/16400', kind: 'symlink', linkTarget: tsLocation },
      { path: 'global/pg_control', data: fakeControlFile(undefined, 1) },
      { path: 'pg_wal/000000010000000000000002', data: bytes(C, 5) },
    ],
    tablespace: { oid: '16400', location: tsLocation, members: [...dirs('PG_15_1', 'PG_15_1/5'), { path: 'PG_15_1/5/500', data: bytes(4 * C, 6) }] },
  };
}

/** v1 with 1 chunk of base/1/100 changed, 200 grown, 300 shrunk, dir base/2 dropped, a new file, new WAL, label and control. */
function v2(tsLocation: string): BackupSpec {
  const a = bytes(5 * C + 300, 1);
  a.fill(0xab, 2 * C + 10, 2 * C + 20);
  const ts = bytes(4 * C, 6);
  ts[3 * C] ^= 1;
  return {
    startLsn: '0/3000028',
    endLsn: '0/3000100',
    base: [
      { path: 'backup_label', data: backupLabel('0/3000028') },
      { path: 'PG_VERSION', data: Buffer.from('15\n') },
      ...dirs('base', 'base/1', 'base/3', 'global', 'pg_wal', 'pg_wal/archive_status', 'pg_tblspc'),
      { path: 'base/1/100', data: a },
      { path: 'base/1/200', data: Buffer.concat([bytes(3 * C, 2), bytes(C + 7, 8)]) },
      { path: 'base/1/300', data: bytes(C, 3) },
      { path: 'base/3/600', data: bytes(2 * C + 1, 9) },
      { path: 'pg_tblspc/16400', kind: 'symlink', linkTarget: tsLocation },
      { path: 'global/pg_control', data: fakeControlFile(undefined, 2) },
      { path: 'pg_wal/000000010000000000000003', data: bytes(C, 10) },
    ],
    tablespace: { oid: '16400', location: tsLocation, members: [...dirs('PG_15_1', 'PG_15_1/5'), { path: 'PG_15_1/5/500', data: ts }] },
  };
}

/** A fresh backup of `spec` into `dir` (tablespace at `ts`), with manifest and chunk map. */
async function writeFresh(spec: BackupSpec, dir: string, ts: string): Promise<void> {
  const tablespaceMapping = { [spec.tablespace!.location]: ts };
  await runPipeline(Readable.from(backupEvents(spec)), [manifestBuild(), chunkMapBuild({ chunkSize: C, tablespaceMapping })], new DirectorySink({ target: dir, sync: false, tablespaceMapping }));
}

async function refresh(spec: BackupSpec, dir: string, opts: { failAfter?: number; onStep?: (s: string) => void } = {}) {
  const prior = await loadPriorState(dir);
  const diff = chunkDiff({ prior: prior.map, tablespaces: { existing: prior.tablespaces, mapping: {} } });
  const sink = new RefreshDirectorySink({ prior, sync: false, onStep: opts.onStep });
  let events: BackupEvent[] | AsyncGenerator<BackupEvent> = backupEvents(spec);
  if (opts.failAfter !== undefined) {
    const list = events;
    const n = opts.failAfter;
    events = (async function* () {
      let data = 0;
      for (const ev of list) {
        if (ev.type === 'data' && data++ === n) {
          // Mid-stream means after the sink began (its marker exists), however far the stages' buffers let the source run ahead.
          for (let t = 0; n > 0 && t < 200 && !existsSync(path.join(dir, REFRESH_MARKER)); t++) await sleep(5);
          throw new Error('source failed');
        }
        yield ev;
      }
    })();
  }
  await runPipeline(Readable.from(events), [manifestBuild(), diff], sink);
  return { prior, diff: diff.result!, sink: sink.result };
}

/** The tree of a backup with its tablespace, links shown relative to their own root (and so the map's record of where the tablespace is). */
async function snapshot(dir: string, ts: string): Promise<Record<string, string>> {
  const t = await treeOf(dir);
  t['pg_tblspc/16400'] = 'link';
  const map = decodeChunkMap(await fs.readFile(path.join(dir, CHUNK_MAP_FILE)));
  assert.deepEqual(map.header.tablespaces, { 16400: ts }, 'the map records where the tablespace is');
  // Each backup keys its hashes afresh (a refresh keeps its prior's key): compare what is not keyed.
  const { hashKey, tablespaces, ...header } = map.header;
  assert.match(hashKey ?? '', /^[0-9a-f]{64}$/);
  t[CHUNK_MAP_FILE] = JSON.stringify({ header, files: [...map.files.values()].map((f) => [f.path, f.size, [...f.crcs]]) });
  return { ...t, ...Object.fromEntries(Object.entries(await treeOf(ts)).map(([k, v]) => [`TS/${k}`, v])) };
}

async function setup(): Promise<{ root: string; dir: string; ts: string; want: Record<string, string> }> {
  const root = await scratch();
  const dir = path.join(root, 'data');
  const ts = path.join(root, 'ts');
  await writeFresh(v1(path.join(root, 'server-ts')), dir, ts);
  // What a fresh backup of v2 looks like: the judge.
  const fresh = path.join(root, 'fresh');
  const freshTs = path.join(root, 'fresh-ts');
  const spec = v2(path.join(root, 'server-ts'));
  await writeFresh(spec, fresh, freshTs);
  return { root, dir, ts, want: await snapshot(fresh, freshTs) };
}

test('a refresh makes the directory identical to a fresh backup while writing only what changed', async () => {
  const { root, dir, ts, want } = await setup();
  const prior = await loadPriorState(dir);
  assert.ok(prior.pristine, 'a fresh backup with its map is trusted whole');
  assert.equal(prior.reread, 0);
  const r = await refresh(v2(path.join(root, 'server-ts')), dir);
  assert.deepEqual(await snapshot(dir, ts), want);
  assert.ok(!existsSync(path.join(dir, REFRESH_MARKER)));
  // Changed: 1 chunk of 100, 2 of 200 (old short end + new), 1 in the tablespace; new: 600 (3 chunks), WAL, control, label.
  assert.equal(r.diff.chunksChanged, 1 + 1 + 1 + 3 + 1 + 1 + 1 + 1);
  // Written: of a changed chunk only the 8 KiB pages that differ from the file (100's and 500's: one each);
  // 200's new tail, 600, the WAL segment, control and label whole.
  const dataWritten = 8192 + (C + 7) + C + (2 * C + 1) + 8192 + 8192 + backupLabel('0/3000028').length;
  assert.ok(r.sink.bytesWritten > dataWritten && r.sink.bytesWritten < dataWritten + 64 * 1024, `wrote ${r.sink.bytesWritten}`);
  assert.equal(r.sink.bytesSame, 2 * (C - 8192), 'the rest of those two chunks was compared and left alone');
  assert.equal(r.sink.filesRemoved, 2); // base/2/400 and the old WAL segment
  assert.equal(r.sink.directoriesRemoved, 1);
  // And a second refresh with the same stream writes no data at all.
  const again = await refresh(v2(path.join(root, 'server-ts')), dir);
  assert.equal(again.diff.bytesOut, 8192, 'only pg_control, which is always rewritten');
  assert.deepEqual(await snapshot(dir, ts), want);
});

test('a refresh that fails mid-stream leaves the directory marked incomplete; the next one completes it', async () => {
  const { root, dir, ts, want } = await setup();
  // Failing at the very first data event may come before the sink has even seen `start`:
  // then nothing at all was written; either way the directory never looks whole while it is not.
  await assert.rejects(refresh(v2(path.join(root, 'server-ts')), dir, { failAfter: 0 }), /source failed/);
  assert.notEqual(existsSync(path.join(dir, REFRESH_MARKER)), existsSync(path.join(dir, 'backup_manifest')));
  for (const n of [40, 150]) {
    await assert.rejects(refresh(v2(path.join(root, 'server-ts')), dir, { failAfter: n }), /source failed/);
    assert.ok(existsSync(path.join(dir, REFRESH_MARKER)), `marker after ${n}`);
    assert.ok(!existsSync(path.join(dir, 'backup_manifest')));
    assert.ok(!existsSync(path.join(dir, 'global/pg_control')), 'PostgreSQL cannot start it');
    await assert.rejects(assertComplete(dir), /incomplete refresh, run refresh again/);
  }
  const prior = await loadPriorState(dir);
  assert.ok(prior.incomplete && !prior.pristine);
  assert.ok(prior.reread > 0, 'files the failed runs touched are read again');
  await refresh(v2(path.join(root, 'server-ts')), dir);
  assert.deepEqual(await snapshot(dir, ts), want);
  await assertComplete(dir);
});

test('a failure at each commit step is completed by the next refresh', async () => {
  for (const step of ['remove', 'control', 'map', 'manifest', 'marker']) {
    const { root, dir, ts, want } = await setup();
    await assert.rejects(
      refresh(v2(path.join(root, 'server-ts')), dir, { onStep: (s) => { if (s === step) throw new Error(`crash at ${s}`); } }),
      new RegExp(`crash at ${step}`),
    );
    await assert.rejects(assertComplete(dir), /incomplete refresh/);
    const r = await refresh(v2(path.join(root, 'server-ts')), dir);
    assert.deepEqual(await snapshot(dir, ts), want, step);
    assert.ok(r.diff.bytesOut < 4 * C, `${step}: the completing run rewrote ${r.diff.bytesOut} bytes`);
  }
});

test('a file changed after the map was written is read again, not trusted: its stale chunk is rewritten', async () => {
  const root = await scratch();
  const dir = path.join(root, 'data');
  const spec = v1(path.join(root, 'server-ts'));
  await writeFresh(spec, dir, path.join(root, 'ts'));
  await sleep(50); // past the coarse clock tick of the map's own ctime
  const fh = await fs.open(path.join(dir, 'base/1/300'), 'r+');
  await fh.write(Buffer.from('scribble'), 0, 8, C + 5);
  await fh.close();
  const prior = await loadPriorState(dir);
  assert.equal(prior.reread, 1);
  assert.ok(!prior.pristine);
  // The server still has the original bytes: the map says "unchanged", the disk disagrees.
  const r = await refresh(spec, dir);
  assert.deepEqual(await fs.readFile(path.join(dir, 'base/1/300')), bytes(2 * C, 3));
  assert.equal(r.diff.chunksChanged, 1 + 1); // the scribbled chunk, and pg_control
});

test('a backup of another system is refused before anything is written', async () => {
  const root = await scratch();
  const dir = path.join(root, 'data');
  await writeFresh(v1(path.join(root, 'server-ts')), dir, path.join(root, 'ts'));
  const before = await treeOf(dir);
  const other = { ...v2(path.join(root, 'server-ts')), systemIdentifier: '7300000000000000999' };
  await assert.rejects(refresh(other, dir), /is a backup of database system 7300000000000000001, the server is 7300000000000000999/);
  assert.deepEqual(await treeOf(dir), before);
});

test('the new chunk map and the manifest go to their temporary files as they come; a destroy removes them, the marker stays', async () => {
  const { root, dir } = await setup();
  const oldMap = await fs.readFile(path.join(dir, CHUNK_MAP_FILE));
  const prior = await loadPriorState(dir);
  const stream: BackupEvent[] = [];
  await runPipeline(
    Readable.from(backupEvents(v2(path.join(root, 'server-ts')))),
    [manifestBuild(), chunkDiff({ prior: prior.map, tablespaces: { existing: prior.tablespaces, mapping: {} } })],
    new (await import('node:stream')).Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (stream.push(ev), cb()) }),
  );
  const sink = new RefreshDirectorySink({ prior, sync: false });
  sink.on('error', () => {});
  const write = (ev: BackupEvent) => new Promise<void>((resolve, reject) => sink.write(ev, (err) => (err ? reject(err) : resolve())));
  const at = stream.findIndex((e) => e.type === 'entry' && e.path === 'pgbb.chunkmap');
  const mapEnd = stream.findIndex((e, i) => i > at && e.type === 'entry-end');
  for (const ev of stream.slice(0, mapEnd + 1)) await write(ev);
  const mapData = Buffer.concat(stream.slice(at + 1, mapEnd).map((e) => (e as { chunk: Buffer }).chunk));
  assert.ok((await fs.readFile(path.join(dir, `${CHUNK_MAP_FILE}.tmp`))).equals(mapData), 'the map is on disk once its member ends');
  assert.ok((await fs.readFile(path.join(dir, CHUNK_MAP_FILE))).equals(oldMap), 'the old map stays until commit');
  // A manifest piece past the write batch is on disk before end.
  for (const ev of stream.slice(mapEnd + 1)) if (ev.type === 'archive-end') await write(ev);
  await write({ type: 'manifest', data: Buffer.alloc(300 * 1024, 0x20) });
  assert.equal((await fs.stat(path.join(dir, 'backup_manifest.tmp'))).size, 300 * 1024);
  sink.destroy(new Error('aborted'));
  await new Promise((r) => sink.once('close', r));
  assert.ok(!existsSync(path.join(dir, `${CHUNK_MAP_FILE}.tmp`)) && !existsSync(path.join(dir, 'backup_manifest.tmp')), 'temporary files removed');
  assert.ok(existsSync(path.join(dir, REFRESH_MARKER)), 'still marked incomplete');
  await assert.rejects(assertComplete(dir), /incomplete refresh/);
});
