/**
 * Fuzz targets for the sources that read existing backups, end to end:
 *   stream     tarStreamSource (what `pgbb restore -` / `verify -` read) over
 *              pgbb's own `-D -` output, plain and zstd, mutated — in the tar
 *              bytes (header fields with their checksum fixed, or anywhere),
 *              in the zstd bytes, or in the tar bytes before compression;
 *   directory  tarDirectorySource over a `-F tar` directory (base.tar,
 *              16385.tar, backup_manifest; plain or .zst) with one file mutated.
 * Each through manifest-verify, as restore and verify run it. The events that
 * come out must keep the member-stream order (start first, entries inside
 * archives, data offsets contiguous, end last); failures must be PgbbErrors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as binding from 'zstd-napi/binding';
import type { BackupEvent } from '../../../src/events';
import { tarDirectorySource, tarStreamSource } from '../../../src/sources/tar-backup-source';
import { manifestVerify } from '../../../transforms/manifest-verify';
import { sampleStream, sampleTarDirectory } from '../../support/synthetic-backup';
import { chunked, mutate, type Rng } from '../support/random';
import { headerOffsets, mutateHeader } from './tar';
import type { FuzzTarget } from '../support/target';

function zstd(data: Buffer): Buffer {
  const dst = Buffer.alloc(binding.compressBound(data.length));
  return dst.subarray(0, new binding.CCtx().compress(dst, data, 1));
}

/** Checks the member-stream contract of src/events.ts as events pass. */
function orderChecker(): Writable {
  let state: 'before' | 'top' | 'archive' | 'entry' | 'ended' = 'before';
  let next = 0;
  let size = 0;
  return new Writable({
    objectMode: true,
    write(ev: BackupEvent, _e, cb) {
      try {
        if (ev.type === 'progress' || ev.type === 'warning') return cb();
        if (state === 'before') assert.equal(ev.type, 'start', 'start comes first');
        else assert.notEqual(state, 'ended', 'nothing after end');
        switch (ev.type) {
          case 'start':
            assert.equal(state, 'before');
            state = 'top';
            break;
          case 'archive':
            assert.equal(state, 'top', 'archive at the top level');
            state = 'archive';
            break;
          case 'entry':
            assert.equal(state, 'archive', 'entry inside an archive');
            assert.ok(ev.path.length > 0 && Number.isSafeInteger(ev.size) && ev.size >= 0);
            state = 'entry';
            next = 0;
            size = ev.size;
            break;
          case 'data':
            assert.equal(state, 'entry', 'data inside an entry');
            assert.equal(ev.offset, next, 'contiguous data');
            next += ev.chunk.length;
            assert.ok(next <= size, 'no more data than the entry size');
            break;
          case 'entry-end':
            assert.equal(state, 'entry');
            assert.equal(next, size, 'the whole entry before entry-end');
            state = 'archive';
            break;
          case 'archive-end':
            assert.equal(state, 'archive');
            state = 'top';
            break;
          case 'manifest':
            assert.equal(state, 'top');
            break;
          case 'end':
            assert.equal(state, 'top');
            state = 'ended';
            break;
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    final(cb) {
      cb(state === 'ended' ? null : new assert.AssertionError({ message: `the source stopped without an error in state ${state}` }));
    },
  });
}

interface StreamCtx {
  plain: Buffer;
  offsets: number[];
  compressed: Buffer;
}

export const stream: FuzzTarget<StreamCtx> = {
  async setup() {
    const plain = await sampleStream();
    // The seeds themselves must read back and verify.
    await pipeline(tarStreamSource(Readable.from([plain])), manifestVerify({ require: true }), orderChecker());
    const compressed = await sampleStream({ zstd: true });
    await pipeline(tarStreamSource(Readable.from([compressed])), manifestVerify({ require: true }), orderChecker());
    return { plain, offsets: headerOffsets(plain), compressed };
  },
  async run(rng: Rng, ctx) {
    let input: Buffer;
    switch (rng.int(5)) {
      case 0:
      case 1:
        input = mutateHeader(rng, ctx.plain, ctx.offsets);
        break;
      case 2:
        input = mutate(rng, ctx.plain);
        break;
      case 3:
        input = mutate(rng, ctx.compressed);
        break;
      default:
        input = zstd(rng.chance(0.5) ? mutateHeader(rng, ctx.plain, ctx.offsets) : mutate(rng, ctx.plain));
    }
    await pipeline(tarStreamSource(Readable.from(chunked(rng, input, [512, 4096, 65536])), 'fuzz input'), manifestVerify(), orderChecker());
  },
};

interface DirCtx {
  sets: Array<Map<string, Buffer>>;
  offsets: Map<Buffer, number[]>;
  dir: string;
}

let root = '';

export const directory: FuzzTarget<DirCtx> = {
  async setup() {
    root = mkdtempSync(join(tmpdir(), 'pgbb-fuzz-dir-'));
    const sets: DirCtx['sets'] = [];
    for (const zstdOn of [false, true]) {
      const target = join(root, zstdOn ? 'z' : 'p');
      const files = await sampleTarDirectory(target, { zstd: zstdOn });
      const set = new Map<string, Buffer>();
      for (const f of files) set.set(basename(f), await fs.readFile(f));
      sets.push(set);
      await fs.rm(target, { recursive: true });
    }
    const offsets = new Map<Buffer, number[]>();
    for (const set of sets) for (const b of set.values()) offsets.set(b, headerOffsets(b));
    return { sets, offsets, dir: join(root, 'case') };
  },
  async teardown() {
    if (root) await fs.rm(root, { recursive: true, force: true });
  },
  async run(rng, ctx) {
    const set = new Map(rng.pick(ctx.sets));
    const name = rng.pick([...set.keys()]);
    const b = set.get(name)!;
    const offs = ctx.offsets.get(b)!;
    set.set(name, offs.length && rng.chance(0.5) ? mutateHeader(rng, b, offs) : mutate(rng, b));
    if (rng.chance(0.05)) set.delete(rng.pick([...set.keys()]));
    await fs.rm(ctx.dir, { recursive: true, force: true });
    await fs.mkdir(ctx.dir, { recursive: true });
    for (const [n, data] of set) await fs.writeFile(join(ctx.dir, n), data);
    await pipeline(tarDirectorySource(ctx.dir), manifestVerify(), orderChecker());
  },
};
