/**
 * delta-pack and delta-unpack on synthetic streams: chunk-diff's output
 * packed into prefixed whole members (one per changed chunk, sized by the
 * chunk), the chunk map member dropped; unpacked back into the in-place
 * entries and offsets chunk-diff gave, with the map member before the end;
 * hostile links (a member without a prefix, a chunk out of order or of the
 * wrong size, an in-place file the map lacks) refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { chunkDiff } from '../../transforms/chunk-diff';
import { chunkMapBuild } from '../../transforms/chunk-map-build';
import { deltaPack } from '../../transforms/delta-pack';
import { deltaUnpack } from '../../transforms/delta-unpack';
import type { ChunkMap } from '../../src/codec/chunkmap/chunk-map';
import type { BackupEvent, DataEvent, EntryEvent } from '../../src/events';
import { backupEvents, bytes, collect, type Member } from '../support/chunk-fixtures';

const C = 64 * 1024;
const rel = bytes(3 * C + 100, 1);
const members = (r: Buffer): Member[] => [
  { path: 'PG_VERSION', data: Buffer.from('15\n') },
  { path: 'base', kind: 'directory' },
  { path: 'base/5/16384', data: r },
];

async function mapOf(list: Member[]): Promise<ChunkMap> {
  const t = chunkMapBuild({ chunkSize: C, emit: false });
  await collect(backupEvents({ base: list }), [t]);
  return t.result!.map;
}

const entries = (out: BackupEvent[]) => out.filter((e): e is EntryEvent => e.type === 'entry');
const unpack = (map: ChunkMap) => deltaUnpack({ map, where: 's3://b/p/x', tablespaces: { existing: new Map(), mapping: {} } });

test('delta: changed chunks packed as sized members, unpacked to the offsets chunk-diff gave', async () => {
  const prior = await mapOf(members(rel));
  const changed = Buffer.from(rel);
  changed[C + 5] ^= 1;
  changed[3 * C + 50] ^= 1; // the short last chunk
  const diff = chunkDiff({ prior });
  const packed = await collect(backupEvents({ base: [...members(changed), { path: 'base/5/new', data: Buffer.from('hi') }] }), [diff, deltaPack(C)]);
  assert.deepEqual(entries(packed).map((e) => [e.path, e.size]), [
    ['p/PG_VERSION', 0],
    ['w/base', 0],
    ['p/base/5/16384', 0],
    ['c/1/base/5/16384', C],
    ['c/3/base/5/16384', 100],
    ['w/base/5/new', 2],
  ]);
  assert.ok(!packed.some((e) => e.type === 'entry' && e.path.includes('pgbb.chunkmap')), 'the map member is dropped');
  assert.equal(packed.filter((e) => e.type === 'archive').length, 1);

  const map = diff.result!.map;
  const out = await collect(packed, [unpack(map)]);
  const file = entries(out).find((e) => e.path === 'base/5/16384')!;
  assert.equal(file.inPlace, true);
  assert.equal(file.size, changed.length);
  const at = out.indexOf(file);
  const data = out.slice(at + 1, out.findIndex((e, i) => i > at && e.type === 'entry-end')) as DataEvent[];
  assert.deepEqual([...new Set(data.map((d) => Math.floor(d.offset / C)))], [1, 3]);
  for (const d of data) assert.ok(d.chunk.equals(changed.subarray(d.offset, d.offset + d.chunk.length)));
  assert.ok(entries(out).some((e) => e.path === 'pgbb.chunkmap'), 'the map member goes to the refresh sink');
  assert.ok(entries(out).some((e) => e.path === 'base/5/new' && !e.inPlace));
});

test('delta: hostile links are refused, naming the member', async () => {
  const map = await mapOf(members(rel));
  const base = (list: BackupEvent[]): BackupEvent[] => [
    ...backupEvents({ base: [] }).slice(0, 2),
    ...list,
    { type: 'archive-end' },
    { type: 'end', endLsn: '0/2000100', timeline: 1 },
  ];
  const entry = (path: string, size: number): BackupEvent[] => [
    { type: 'entry', path, kind: 'file', size, mode: 0o600, mtime: new Date() },
    ...(size ? [{ type: 'data', offset: 0, chunk: Buffer.alloc(size) } as BackupEvent] : []),
    { type: 'entry-end' },
  ];
  const cases: Array<[BackupEvent[], RegExp]> = [
    [entry('base/5/16384', 1), /member "base\/5\/16384" of .* is not one an incremental backup holds/],
    [[...entry('p/base/5/16384', 0), ...entry('c/2/base/5/16384', C), ...entry('c/1/base/5/16384', C)], /chunk 1 of "base\/5\/16384" is out of order/],
    [[...entry('p/base/5/16384', 0), ...entry('c/3/base/5/16384', C)], /chunk 3 of "base\/5\/16384" is 65536 bytes, not 100/],
    [[...entry('p/base/5/16384', 0), ...entry('c/9/base/5/16384', C)], /beyond its/],
    [entry('c/0/base/5/16384', C), /does not follow its file/],
    [entry('p/base/5/99999', 0), /"base\/5\/99999" is updated in place but its chunk map does not list it/],
  ];
  for (const [list, why] of cases) {
    await assert.rejects(collect(Readable.from(base(list)), [unpack(map)]), why);
  }
});
