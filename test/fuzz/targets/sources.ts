/**
 * Fuzz targets for the sources that read existing backups, end to end:
 *   stream     tarStreamSource (what `pgbb restore -` / `verify -` read) over
 *              pgbb's own `-D -` output, plain and zstd, mutated — in the tar
 *              bytes (header fields with their checksum fixed, or anywhere),
 *              in the zstd bytes, or in the tar bytes before compression;
 *   directory  tarDirectorySource over a `-F tar` directory (base.tar,
 *              16385.tar, backup_manifest; plain or .zst) with one file mutated.
 * Each through manifest-verify with a manifest required, as restore and
 * verify run it. The events that come out must keep the member-stream order
 * (start first, entries inside archives, data offsets contiguous, end last);
 * failures must be PgbbErrors; and a backup that is accepted must hold
 * exactly the files, with exactly the bytes, it was made with. Some cases
 * flip one bit in one file's data (tar headers untouched), which only the
 * manifest can catch: they must fail with a ManifestError naming that file.
 * Some read the backup unchanged: it must verify.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as binding from 'zstd-napi/binding';
import { ManifestError } from '../../../src/errors';
import { tarDirectorySource, tarStreamSource } from '../../../src/sources/tar-backup-source';
import { manifestVerify } from '../../../transforms/manifest-verify';
import { RAW_NAME, sampleEvents, sampleStream, sampleTarDirectory } from '../../support/synthetic-backup';
import { fileRegions, memberChecker, sameFiles, type FileRegion, type Files } from '../support/backup-check';
import { chunked, mutate, type Rng } from '../support/random';
import { headerOffsets, mutateHeader } from './tar';
import type { FuzzTarget } from '../support/target';

function zstd(data: Buffer): Buffer {
  const dst = Buffer.alloc(binding.compressBound(data.length));
  return dst.subarray(0, new binding.CCtx().compress(dst, data, 1));
}

/** The regular files of the synthetic backup, from its events (not read back by the code under test). */
async function sampleFiles(): Promise<Files> {
  const out = memberChecker();
  await pipeline(Readable.from(sampleEvents(), { objectMode: true }), out);
  return out.files;
}

/**
 * Reads a backup through manifest-verify with a manifest required (as
 * restore and verify need one), and checks that what came out is the backup
 * as it was made: any change to a file's bytes that got through is a
 * violation, not an acceptance.
 */
async function readBack(source: Readable, want: Files, what: string): Promise<void> {
  const mv = manifestVerify({ require: true });
  const out = memberChecker();
  await pipeline(source, mv, out);
  assert.equal(mv.result?.checked, true, `${what}: verified against a manifest`);
  sameFiles(out.files, want, what);
}

/** `read` must fail with a ManifestError naming `path` (rethrown, so the case counts as rejected). */
async function expectRejected(read: Promise<void>, path: string): Promise<void> {
  try {
    await read;
  } catch (err) {
    if (err instanceof ManifestError && err.message.includes(`"${path}"`)) throw err;
    throw new assert.AssertionError({ message: `"${path}" changed: expected a ManifestError naming it, got ${String(err)}` });
  }
  throw new assert.AssertionError({ message: `a backup with "${path}" changed was accepted` });
}

/** One bit of one file's data flipped: tar headers and their checksums stay as they were. */
function flipDataBit(rng: Rng, tar: Buffer, r: FileRegion): Buffer {
  const out = Buffer.from(tar);
  out[r.at + rng.int(r.size)] ^= 1 << rng.int(8);
  return out;
}

/** The regions whose member name is the file's manifest path (`prefix` + name), checked to cover every file but the non-UTF-8 one. */
function regionsOf(tar: Buffer, prefix: string, want: Files): FileRegion[] {
  return fileRegions(tar)
    .map((r) => ({ ...r, path: prefix + r.path }))
    .filter((r) => want.has(r.path));
}

function assertCovers(regions: FileRegion[], want: Files): void {
  const missing = [...want.keys()].filter((p) => p !== RAW_NAME && !regions.some((r) => r.path === p));
  assert.deepEqual(missing, [], 'every file (but the non-UTF-8 name) has a data region to flip a bit in');
}

interface StreamCtx {
  plain: Buffer;
  offsets: number[];
  compressed: Buffer;
  files: Files;
  regions: FileRegion[];
}

const streamSource = (rng: Rng, input: Buffer) => tarStreamSource(Readable.from(chunked(rng, input, [512, 4096, 65536])), 'fuzz input');

export const stream: FuzzTarget<StreamCtx> = {
  async setup() {
    const files = await sampleFiles();
    const plain = await sampleStream();
    const compressed = await sampleStream({ zstd: true });
    // The seeds themselves read back whole and verify.
    await readBack(tarStreamSource(Readable.from([plain])), files, 'the plain seed');
    await readBack(tarStreamSource(Readable.from([compressed])), files, 'the zstd seed');
    const regions = regionsOf(plain, '', files);
    assertCovers(regions, files);
    return { plain, offsets: headerOffsets(plain), compressed, files, regions };
  },
  async run(rng: Rng, ctx) {
    let input: Buffer;
    switch (rng.int(8)) {
      case 0: {
        const r = rng.pick(ctx.regions);
        const tar = flipDataBit(rng, ctx.plain, r);
        return expectRejected(readBack(streamSource(rng, rng.chance(0.5) ? zstd(tar) : tar), ctx.files, 'fuzz input'), r.path);
      }
      case 1:
        return readBack(streamSource(rng, rng.chance(0.5) ? ctx.plain : ctx.compressed), ctx.files, 'an unchanged stream');
      case 2:
      case 3:
        input = mutateHeader(rng, ctx.plain, ctx.offsets);
        break;
      case 4:
        input = mutate(rng, ctx.plain);
        break;
      case 5:
        input = mutate(rng, ctx.compressed);
        break;
      default:
        input = zstd(rng.chance(0.5) ? mutateHeader(rng, ctx.plain, ctx.offsets) : mutate(rng, ctx.plain));
    }
    await readBack(streamSource(rng, input), ctx.files, 'fuzz input');
  },
};

interface DirCtx {
  sets: Array<Map<string, Buffer>>;
  offsets: Map<Buffer, number[]>;
  /** Data regions in the plain set's base.tar and 16385.tar. */
  regions: Map<string, FileRegion[]>;
  files: Files;
  dir: string;
}

let root = '';

async function writeSet(dir: string, set: Map<string, Buffer>): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  for (const [n, data] of set) await fs.writeFile(join(dir, n), data);
}

export const directory: FuzzTarget<DirCtx> = {
  async setup() {
    root = mkdtempSync(join(tmpdir(), 'pgbb-fuzz-dir-'));
    const files = await sampleFiles();
    const sets: DirCtx['sets'] = [];
    for (const zstdOn of [false, true]) {
      const target = join(root, zstdOn ? 'z' : 'p');
      const names = await sampleTarDirectory(target, { zstd: zstdOn });
      // The seeds themselves read back whole and verify.
      await readBack(tarDirectorySource(target), files, `the ${zstdOn ? 'zstd' : 'plain'} seed`);
      const set = new Map<string, Buffer>();
      for (const f of names) set.set(basename(f), await fs.readFile(f));
      sets.push(set);
      await fs.rm(target, { recursive: true });
    }
    const offsets = new Map<Buffer, number[]>();
    for (const set of sets) for (const b of set.values()) offsets.set(b, headerOffsets(b));
    const regions = new Map<string, FileRegion[]>();
    for (const [name, b] of sets[0]!) {
      const m = /^(base|\d+)\.tar$/.exec(name);
      if (m) regions.set(name, regionsOf(b, m[1] === 'base' ? '' : `pg_tblspc/${m[1]}/`, files));
    }
    assertCovers([...regions.values()].flat(), files);
    return { sets, offsets, regions, files, dir: join(root, 'case') };
  },
  async teardown() {
    if (root) await fs.rm(root, { recursive: true, force: true });
  },
  async run(rng, ctx) {
    const mode = rng.int(10);
    if (mode === 0) {
      // One bit of one file's data, in base.tar or a tablespace's tar, compressed or not.
      const set = new Map(ctx.sets[0]);
      const name = rng.pick([...ctx.regions.keys()]);
      const r = rng.pick(ctx.regions.get(name)!);
      const tar = flipDataBit(rng, set.get(name)!, r);
      if (rng.chance(0.5)) {
        set.delete(name);
        set.set(`${name}.zst`, zstd(tar));
      } else set.set(name, tar);
      await writeSet(ctx.dir, set);
      return expectRejected(readBack(tarDirectorySource(ctx.dir), ctx.files, 'fuzz input'), r.path);
    }
    const set = new Map(rng.pick(ctx.sets));
    if (mode === 1) {
      await writeSet(ctx.dir, set);
      return readBack(tarDirectorySource(ctx.dir), ctx.files, 'an unchanged directory');
    }
    const name = rng.pick([...set.keys()]);
    const b = set.get(name)!;
    const offs = ctx.offsets.get(b)!;
    set.set(name, offs.length && rng.chance(0.5) ? mutateHeader(rng, b, offs) : mutate(rng, b));
    if (rng.chance(0.05)) set.delete(rng.pick([...set.keys()]));
    await writeSet(ctx.dir, set);
    await readBack(tarDirectorySource(ctx.dir), ctx.files, 'fuzz input');
  },
};
