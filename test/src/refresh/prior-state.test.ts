/**
 * What a refresh trusts before it writes: loadPriorState on temp
 * directories — a fresh pgbb backup is trusted whole; without a map, with a
 * damaged one, one of another chunk size or another backup, everything is
 * read again (and the digests are right); journaled files and files changed
 * after the map are read again; pg_control and refresh-owned files are never
 * mapped; tablespace links are followed. The journal's torn last line is
 * ignored; the lock is taken over from a dead process only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectorySink } from '../../../sinks/directory';
import { chunkMapBuild } from '../../../transforms/chunk-map-build';
import { runPipeline } from '../../../src/pipeline';
import { digestChunk } from '../../../src/codec/chunkmap/chunk-hasher';
import { decodeChunkMap } from '../../../src/codec/chunkmap/chunk-map';
import { loadPriorState } from '../../../src/refresh/prior-state';
import { readJournal, RefreshJournal } from '../../../src/refresh/refresh-journal';
import { REFRESH_MARKER } from '../../../src/io/refresh-marker';
import { lockForRefresh } from '../../../src/io/target-lock';
import { IoError } from '../../../src/errors';
import { LIMITS } from '../../../src/io/read-limited';
import { backupEvents, backupLabel, bytes, fakeControlFile, HASH_KEY_BYTES, rewriteMap, type BackupSpec } from '../../support/chunk-fixtures';
import { plant, releaseFifos, within, type Hostile } from '../../support/hostile-files';

const C = 64 * 1024;
const roots: string[] = [];
after(async () => {
  releaseFifos();
  for (const r of roots) await fs.rm(r, { recursive: true, force: true });
});

function spec(ts: string): BackupSpec {
  return {
    base: [
      { path: 'backup_label', data: backupLabel('0/2000028') },
      { path: 'PG_VERSION', data: Buffer.from('15\n') },
      { path: 'base', kind: 'directory' },
      { path: 'base/1', kind: 'directory' },
      { path: 'base/1/100', data: bytes(3 * C + 7, 1) },
      { path: 'global', kind: 'directory' },
      { path: 'global/pg_control', data: fakeControlFile() },
      { path: 'pg_wal', kind: 'directory' },
      { path: 'pg_tblspc', kind: 'directory' },
      { path: 'pg_tblspc/16400', kind: 'symlink', linkTarget: ts },
    ],
    tablespace: { oid: '16400', location: ts, members: [{ path: 'PG_15_1', kind: 'directory' }, { path: 'PG_15_1/7', data: bytes(C, 2) }] },
  };
}

async function backup(withMap = true, chunkSize = C): Promise<{ dir: string; ts: string }> {
  const root = await fs.mkdtemp(path.join(tmpdir(), 'pgbb-prior-'));
  roots.push(root);
  const dir = path.join(root, 'data');
  const ts = path.join(root, 'ts');
  await runPipeline(Readable.from(backupEvents(spec('/server/ts'))), withMap ? [chunkMapBuild({ chunkSize, tablespaceMapping: { '/server/ts': ts } })] : [], new DirectorySink({ target: dir, sync: false, tablespaceMapping: { '/server/ts': ts } }));
  return { dir, ts };
}

test('a fresh pgbb backup is trusted whole; pg_control and the map itself are not mapped; tablespaces are followed', async () => {
  const { dir, ts } = await backup();
  await fs.writeFile(path.join(dir, 'backup_manifest'), '{}');
  const p = await loadPriorState(dir);
  assert.equal(p.reread, 0);
  assert.ok(p.pristine);
  assert.equal(p.chunkSize, C);
  assert.equal(p.systemIdentifier, '7300000000000000001');
  assert.deepEqual([...p.map.files.keys()].sort(), ['PG_VERSION', 'backup_label', 'base/1/100', 'pg_tblspc/16400/PG_15_1/7']);
  assert.deepEqual([...p.tablespaces], [['16400', ts]]);
});

test('no map, a damaged map, a map of another chunk size or another backup: every file is read again, with the right digests', async () => {
  const cases: Array<[string, (dir: string) => Promise<void>, RegExp, number?]> = [
    ['none', async () => {}, /no pg_wal\/pgbb.chunkmap/],
    ['damaged', async (dir) => fs.appendFile(path.join(dir, 'pg_wal/pgbb.chunkmap'), 'x'), /checksum mismatch/],
    ['other size', async () => {}, /chunk size 65536, 131072 was asked for/, 2 * C],
    ['other backup', async (dir) => fs.writeFile(path.join(dir, 'backup_label'), backupLabel('0/9000028')), /started at 0\/2000028, backup_label says 0\/9000028/],
  ];
  for (const [name, damage, problem, chunkSize] of cases) {
    const { dir } = await backup(name !== 'none');
    await damage(dir);
    const p = await loadPriorState(dir, { chunkSize });
    assert.match(p.mapProblem ?? '', problem, name);
    assert.equal(p.reread, 4, name);
    assert.ok(!p.pristine);
    const f = p.map.files.get('base/1/100')!;
    const data = bytes(3 * C + 7, 1);
    // Asked for, else the stored map's when it decodes, else the default 1 MiB.
    const size = chunkSize ?? (name === 'none' || name === 'damaged' ? 1 << 20 : C);
    assert.equal(p.chunkSize, size, name);
    assert.equal(f.crcs.length, Math.ceil(data.length / size));
    assert.equal(f.crcs[f.crcs.length - 1], digestChunk(data.subarray((f.crcs.length - 1) * size), HASH_KEY_BYTES).crc, name);
  }
});

test('a format 1 map (an older pgbb\'s SHA-256 hashes) is not trusted: every file is read again under a fresh key; its tablespace record still counts', async () => {
  const { dir, ts } = await backup();
  const mapFile = path.join(dir, 'pg_wal/pgbb.chunkmap');
  const stored = decodeChunkMap(await fs.readFile(mapFile));
  const { hashKey: oldKey, ...v1Header } = stored.header;
  // Rewritten after every file: were the format trusted, every entry would be.
  await fs.writeFile(mapFile, rewriteMap(await fs.readFile(mapFile), 1, v1Header));
  const p = await loadPriorState(dir);
  assert.match(p.mapProblem ?? '', /SHA-256 chunk hashes \(an older pgbb's format 1\): every file is read again/);
  assert.equal(p.reread, 4);
  assert.ok(!p.pristine);
  assert.ok(p.tablespacesRecorded, 'the header\'s tablespace locations are still the record');
  assert.deepEqual([...p.tablespaces], [['16400', ts]]);
  const key = p.map.header.hashKey!;
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.notEqual(key, oldKey);
  const f = p.map.files.get('base/1/100')!;
  assert.ok(f.hashes.subarray(0, 16).equals(digestChunk(bytes(3 * C + 7, 1).subarray(0, C), Buffer.from(key, 'hex')).hash), 'digested with the new key');
});

test('a current map keeps its key: files read again are digested with it, so they compare with the rest', async () => {
  const { dir } = await backup();
  const stored = decodeChunkMap(await fs.readFile(path.join(dir, 'pg_wal/pgbb.chunkmap')));
  await sleep(50);
  await fs.writeFile(path.join(dir, 'base/1/100'), bytes(3 * C + 7, 1)); // the same bytes, a later ctime
  const p = await loadPriorState(dir);
  assert.equal(p.reread, 1);
  assert.equal(p.map.header.hashKey, stored.header.hashKey);
  assert.ok(p.map.files.get('base/1/100')!.hashes.equals(stored.files.get('base/1/100')!.hashes));
});

test('journaled files and files changed after the map are read again; the rest is trusted', async () => {
  const { dir } = await backup();
  const j = await RefreshJournal.open(dir, false);
  await j.record('PG_VERSION');
  await j.close();
  await fs.appendFile(path.join(dir, REFRESH_MARKER), '"torn'); // a line whose fsync never returned
  assert.deepEqual([...(await readJournal(dir)).keys], ['PG_VERSION']);
  await sleep(50);
  await fs.writeFile(path.join(dir, 'base/1/100'), bytes(3 * C + 7, 99));
  const p = await loadPriorState(dir);
  assert.ok(p.incomplete && !p.pristine);
  assert.equal(p.reread, 2);
  assert.equal(p.map.files.get('base/1/100')!.crcs[0], digestChunk(bytes(3 * C + 7, 99).subarray(0, C), HASH_KEY_BYTES).crc);
});

test('a directory without PG_VERSION is not a backup', async () => {
  const root = await fs.mkdtemp(path.join(tmpdir(), 'pgbb-prior-'));
  roots.push(root);
  await assert.rejects(loadPriorState(root), /is not a plain backup \(no PG_VERSION\)/);
});

const hostile: Array<[string, Hostile, number, RegExp]> = [
  ['PG_VERSION', 'fifo', 0, /^PG_VERSION ".*\/PG_VERSION" is a FIFO, not a regular file$/],
  ['PG_VERSION', 'dev-zero-link', 0, /^PG_VERSION ".*\/PG_VERSION" is a symbolic link: refusing to follow it$/],
  ['global/pg_control', 'fifo', 0, /^pg_control ".*\/global\/pg_control" is a FIFO/],
  ['backup_label', 'oversize', LIMITS.backupLabel.maxBytes, /^backup_label ".*\/backup_label" is larger than 65536 bytes/],
  ['backup_manifest', 'fifo', 0, /^backup_manifest ".*\/backup_manifest" is a FIFO/],
  ['pg_wal/pgbb.chunkmap', 'fifo', 0, /^chunk map ".*\/pg_wal\/pgbb\.chunkmap" is a FIFO/],
  ['pg_wal/pgbb.chunkmap', 'oversize', LIMITS.chunkMap.maxBytes, /^chunk map ".*\/pg_wal\/pgbb\.chunkmap" is larger than 1073741824 bytes/],
  [REFRESH_MARKER, 'fifo', 0, /^refresh journal ".*\/pgbb_refresh_incomplete" is a FIFO/],
];
for (const [rel, kind, max, why] of hostile) {
  test(`a backup whose ${rel} is ${kind} is refused at once, in one line naming it`, async () => {
    const { dir } = await backup();
    await fs.writeFile(path.join(dir, 'backup_manifest'), '{}');
    plant(path.join(dir, rel), kind, max);
    await assert.rejects(within(loadPriorState(dir)), (e: unknown) => e instanceof IoError && why.test(e.message));
  });
}

test('the lock: one holder; a dead holder is taken over, a live one refused', async () => {
  const { dir } = await backup();
  const lock = await lockForRefresh(dir);
  await assert.rejects(lockForRefresh(dir), /is locked by another pgbb run \(pid \d+, this process\)/);
  await lock.release();
  await fs.writeFile(path.join(dir, '.pgbb-lock'), '999999999\n'); // no such process
  const again = await lockForRefresh(dir);
  assert.equal((await fs.readFile(path.join(dir, '.pgbb-lock'), 'utf8')).split(' ')[0], String(process.pid));
  await again.release();
  await assert.rejects(fs.access(path.join(dir, '.pgbb-lock')));
});

test('the refresh marker is never appended through a hard link to a file elsewhere', async () => {
  const outer = await fs.mkdtemp(path.join(tmpdir(), 'pgbb-marker-link-'));
  roots.push(outer);
  const dir = path.join(outer, 'backup');
  await fs.mkdir(dir);
  const victim = path.join(outer, 'victim');
  await fs.writeFile(victim, 'keep\n');
  await fs.link(victim, path.join(dir, REFRESH_MARKER));
  await assert.rejects(RefreshJournal.open(dir, false), (e: unknown) => e instanceof IoError && /2 hard links: refusing to write to it/.test(e.message));
  assert.equal(await fs.readFile(victim, 'utf8'), 'keep\n');
});
