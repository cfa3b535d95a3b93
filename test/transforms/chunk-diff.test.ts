/**
 * chunkDiff on synthetic streams against a prior map: only changed chunks
 * pass, at their offsets, whatever the event sizes; files that grow, shrink,
 * appear and vanish; a prior chunk whose CRC32C matches but whose hash or
 * length does not is rewritten (the collision case); in-place entries with
 * gaps take the prior's records; the new map equals chunk-map-build's; a
 * rebuilt manifest carries whole-file CRCs combined from the chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkDiff } from '../../transforms/chunk-diff';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { manifestBuild } from '../../transforms/manifest-build';
import { digestChunk } from '../../src/codec/chunkmap/chunk-hasher';
import { decodeChunkMap, HASH_BYTES, type ChunkMap } from '../../src/codec/chunkmap/chunk-map';
import { parseManifest } from '../../src/codec/manifest';
import type { BackupEvent, DataEvent, EntryEvent } from '../../src/events';
import { backupEvents, bytes, collect, fakeControlFile, HASH_KEY_BYTES, type Member } from '../support/chunk-fixtures';

const C = 64 * 1024;
const relOld = bytes(5 * C + 100, 1);
const gone = bytes(2 * C, 2);

function baseOf(rel: Buffer, extra: Member[] = []): Member[] {
  return [
    { path: 'PG_VERSION', data: Buffer.from('15\n') },
    { path: 'base', kind: 'directory' },
    { path: 'base/5/16384', data: rel },
    ...extra,
    { path: 'global/pg_control', data: fakeControlFile() },
  ];
}

async function mapOf(members: Member[]): Promise<ChunkMap> {
  const t = chunkMapBuild({ chunkSize: C, emit: false });
  await collect(backupEvents({ base: members }), [t]);
  return t.result!.map;
}

/** file path → written [offset, bytes] runs, and which entries were in place. */
function written(out: BackupEvent[]): { data: Map<string, Buffer[]>; offsets: Map<string, number[]>; inPlace: Set<string> } {
  const data = new Map<string, Buffer[]>();
  const offsets = new Map<string, number[]>();
  const inPlace = new Set<string>();
  let cur = '';
  for (const ev of out) {
    if (ev.type === 'entry') {
      cur = ev.path;
      if (ev.inPlace) inPlace.add(ev.path);
    } else if (ev.type === 'data') {
      if (!data.has(cur)) data.set(cur, []), offsets.set(cur, []);
      data.get(cur)!.push(ev.chunk);
      offsets.get(cur)!.push(ev.offset);
    }
  }
  return { data, offsets, inPlace };
}

test('one changed chunk: only its bytes pass, at its offset; everything else is an unchanged in-place entry', async () => {
  const prior = await mapOf(baseOf(relOld, [{ path: 'base/5/gone', data: gone }]));
  const relNew = Buffer.from(relOld);
  relNew[2 * C + 17] ^= 0xff;
  for (const split of [1000, 8192, C, 3 * C]) {
    const d = chunkDiff({ prior });
    const out = await collect(backupEvents({ base: baseOf(relNew, [{ path: 'base/5/new', data: Buffer.from('hello') }]), split }), [d]);
    const w = written(out);
    assert.ok(Buffer.concat(w.data.get('base/5/16384')!).equals(relNew.subarray(2 * C, 3 * C)), `split ${split}`);
    assert.equal(w.offsets.get('base/5/16384')![0], 2 * C);
    assert.ok(!w.data.has('PG_VERSION'));
    assert.ok(w.inPlace.has('base/5/16384') && w.inPlace.has('PG_VERSION') && !w.inPlace.has('base/5/new'));
    assert.ok(Buffer.concat(w.data.get('base/5/new')!).equals(Buffer.from('hello')));
    const r = d.result!;
    assert.equal(r.chunksChanged, 1 + 1); // the changed chunk and the new file's
    assert.equal(r.chunksUnchanged, 5 + 1 + 1);
    assert.deepEqual([r.filesAdded, r.filesChanged, r.filesUnchanged, r.filesRemoved], [1, 1, 2, 1]);
    assert.equal(r.bytesOut, C + 5);
    assert.equal(r.bytesIn, relNew.length + 3 + 8192 + 5);
  }
});

test('the new map equals the one chunk-map-build records, under the prior\'s key, and goes out as pg_wal/pgbb.chunkmap', async () => {
  const prior = await mapOf(baseOf(relOld));
  const relNew = bytes(7 * C, 9);
  const members = baseOf(relNew, [{ path: 'base/5/x', data: bytes(100, 3) }]);
  const d = chunkDiff({ prior });
  const out = await collect(backupEvents({ base: members, manifest: Buffer.from('{}') }), [d]);
  const want = await mapOf(members);
  assert.deepEqual([...d.result!.map.files.keys()], [...want.files.keys()]);
  for (const [k, f] of want.files) {
    assert.deepEqual([...d.result!.map.files.get(k)!.crcs], [...f.crcs], k);
  }
  // Hashes: keyed by the prior's key (kept in the new map), not the fresh one chunk-map-build chose.
  assert.equal(d.result!.map.header.hashKey, prior.header.hashKey);
  assert.notEqual(want.header.hashKey, prior.header.hashKey);
  const key = Buffer.from(prior.header.hashKey!, 'hex');
  const rel = d.result!.map.files.get('base/5/16384')!;
  for (let k = 0; k < 7; k++) assert.ok(rel.hashes.subarray(k * HASH_BYTES, (k + 1) * HASH_BYTES).equals(digestChunk(relNew.subarray(k * C, (k + 1) * C), key).hash), `chunk ${k}`);
  const i = out.findIndex((e) => e.type === 'entry' && e.path === 'pgbb.chunkmap');
  const encoded = (out[i + 1] as DataEvent).chunk;
  assert.equal(decodeChunkMap(encoded).files.size, want.files.size);
  assert.equal(out[i + 3].type, 'archive-end');
  assert.equal(out[i + 4].type, 'manifest');
});

test('a file that grows, one that shrinks: the changed tail passes and the entry carries the new size', async () => {
  const prior = await mapOf(baseOf(relOld));
  const longer = Buffer.concat([relOld, bytes(C, 5)]);
  let out = await collect(backupEvents({ base: baseOf(longer) }), [chunkDiff({ prior })]);
  let w = written(out);
  // Chunk 5 was 100 bytes and is now a full chunk; chunk 6 is new.
  assert.deepEqual(w.offsets.get('base/5/16384')!.filter((o) => o % C === 0), [5 * C, 6 * C]);
  assert.ok(Buffer.concat(w.data.get('base/5/16384')!).equals(longer.subarray(5 * C)));
  const shorter = relOld.subarray(0, 2 * C);
  out = await collect(backupEvents({ base: baseOf(shorter) }), [chunkDiff({ prior })]);
  w = written(out);
  assert.ok(!w.data.has('base/5/16384'), 'a truncation writes nothing');
  assert.equal((out.find((e) => e.type === 'entry' && e.path === 'base/5/16384') as EntryEvent).size, 2 * C);
});

test('collision: a prior chunk with the same CRC32C but another hash, or another length, is rewritten', async () => {
  const prior = await mapOf(baseOf(relOld));
  const f = prior.files.get('base/5/16384')!;
  const hashes = Buffer.from(f.hashes);
  hashes[3 * HASH_BYTES] ^= 1; // chunk 3: CRC still equal, hash differs
  prior.files.set(f.path, { ...f, hashes });
  const d = chunkDiff({ prior });
  const w = written(await collect(backupEvents({ base: baseOf(relOld) }), [d]));
  assert.deepEqual(w.offsets.get('base/5/16384')!.filter((o) => o % C === 0), [3 * C]);
  assert.equal(d.result!.chunksChanged, 1);

  // Length: the prior's last chunk held 100 bytes whose digest we give to a 99-byte chunk.
  const cut = relOld.subarray(0, 5 * C + 99);
  const prior2 = await mapOf(baseOf(relOld));
  const last = digestChunk(cut.subarray(5 * C), Buffer.from(prior2.header.hashKey!, 'hex'));
  const f2 = prior2.files.get('base/5/16384')!;
  const crcs = f2.crcs.slice();
  crcs[5] = last.crc;
  const hashes2 = Buffer.from(f2.hashes);
  last.hash.copy(hashes2, 5 * HASH_BYTES);
  prior2.files.set(f2.path, { ...f2, crcs, hashes: hashes2 });
  const w2 = written(await collect(backupEvents({ base: baseOf(cut) }), [chunkDiff({ prior: prior2 })]));
  assert.deepEqual(w2.offsets.get('base/5/16384'), [5 * C]);
});

test('in-place entries from upstream may skip chunks: the prior vouches for them; it must hold them at the new length', async () => {
  const prior = await mapOf(baseOf(relOld));
  const relNew = Buffer.from(relOld);
  relNew.fill(7, C, 2 * C);
  const events: BackupEvent[] = backupEvents({ base: baseOf(relOld) });
  const at = events.findIndex((e) => e.type === 'entry' && e.path === 'base/5/16384');
  const end = events.findIndex((e, i) => i > at && e.type === 'entry-end');
  const entry = { ...(events[at] as EntryEvent), inPlace: true };
  events.splice(at, end - at, entry, { type: 'data', offset: C, chunk: relNew.subarray(C, 2 * C) });
  const d = chunkDiff({ prior });
  const w = written(await collect(events, [d]));
  assert.deepEqual(w.offsets.get('base/5/16384'), [C]);
  const f = d.result!.map.files.get('base/5/16384')!;
  assert.equal(f.crcs[1], digestChunk(relNew.subarray(C, 2 * C), HASH_KEY_BYTES).crc);
  assert.equal(f.crcs[4], prior.files.get('base/5/16384')!.crcs[4]);
  // A skipped chunk the prior holds at another length cannot be vouched for.
  const grown = { ...entry, size: relOld.length + 50 };
  const bad = [...events];
  bad[at] = grown;
  await assert.rejects(collect(bad, [chunkDiff({ prior })]), /skips chunk 5, which the target does not hold at its new length/);
  // Data inside a chunk is refused.
  const mid = [...events];
  mid[at + 1] = { type: 'data', offset: C + 8192, chunk: Buffer.alloc(8192) };
  await assert.rejects(collect(mid, [chunkDiff({ prior })]), /starts at offset 73728, inside a chunk/);
});

test('rebuildManifest: the upstream manifest is replaced by one whose CRCs equal a manifest built from the full data', async () => {
  const members = baseOf(bytes(3 * C + 5, 4), [{ path: 'backup_label', data: Buffer.from('label') }]);
  const full = manifestBuild({ replace: true });
  await collect(backupEvents({ base: members }), [full]);
  const d = chunkDiff({ prior: null, chunkSize: C, rebuildManifest: true });
  const out = await collect(backupEvents({ base: members, manifest: Buffer.from('server manifest') }), [d]);
  const manifests = out.filter((e) => e.type === 'manifest');
  assert.equal(manifests.length, 1);
  assert.equal(out[out.length - 2].type, 'manifest');
  const got = parseManifest((manifests[0] as { data: Buffer }).data);
  const want = parseManifest(full.result!.manifest!);
  assert.deepEqual([...got.files.values()].map((f) => [f.path, f.size, f.checksum]), [...want.files.values()].map((f) => [f.path, f.size, f.checksum]));
  assert.deepEqual(got.walRanges, want.walRanges);
});

test('an upstream chunk map member is dropped; a prior of another chunk size is refused', async () => {
  const out = await collect(backupEvents({ base: baseOf(relOld, [{ path: 'pg_wal/pgbb.chunkmap', data: Buffer.from('old') }]) }), [chunkDiff({ prior: null })]);
  assert.equal(out.filter((e) => e.type === 'entry' && e.path.endsWith('pgbb.chunkmap')).length, 1);
  const prior = await mapOf(baseOf(relOld));
  assert.throws(() => chunkDiff({ prior, chunkSize: 2 * C }), /chunk size 131072 differs from the prior map's 65536/);
});

test('the new map and the rebuilt manifest go out in pieces; their concatenations are the result', async () => {
  const members: Member[] = [{ path: 'base', kind: 'directory' }];
  for (let i = 0; i < 5000; i++) members.push({ path: `base/5/${100000 + i}`, data: Buffer.from(String(i)) });
  const d = chunkDiff({ prior: null, chunkSize: C, rebuildManifest: true });
  const out = await collect(backupEvents({ base: members, manifest: Buffer.from('server manifest') }), [d]);
  const manifests = out.filter((e): e is Extract<BackupEvent, { type: 'manifest' }> => e.type === 'manifest');
  assert.ok(manifests.length > 1 && manifests.every((m) => m.data.length <= 256 * 1024), `${manifests.length} manifest pieces`);
  const manifest = Buffer.concat(manifests.map((m) => m.data));
  assert.ok(manifest.equals(d.result!.manifest!));
  assert.equal(parseManifest(manifest).files.size, 5000);
  const at = out.findIndex((e) => e.type === 'entry' && e.path === 'pgbb.chunkmap');
  const pieces: Buffer[] = [];
  for (let i = at + 1; out[i].type === 'data'; i++) pieces.push((out[i] as DataEvent).chunk);
  assert.ok(pieces.length > 1 && pieces.every((p) => p.length <= 64 * 1024));
  assert.equal(Buffer.concat(pieces).length, (out[at] as EntryEvent).size);
  assert.deepEqual([...decodeChunkMap(Buffer.concat(pieces)).files.keys()], [...d.result!.map.files.keys()]);
});

test('a prior of SHA-256 hashes (format 1) is never compared with: it must be digested again first', async () => {
  const prior = await mapOf(baseOf(relOld));
  assert.throws(() => chunkDiff({ prior: { ...prior, hashAlgorithm: 'sha256' } }), /prior map has SHA-256 chunk hashes \(format 1\)/);
});
