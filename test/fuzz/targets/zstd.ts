/**
 * Fuzz target for zstd-decompress (transforms/zstd-decompress.ts): frames
 * from pgbb's zstd-compress (with a content checksum) and from libzstd
 * without one (so corrupt blocks reach the block decoder instead of the
 * checksum), several frames back to back, a skippable frame — mutated and fed
 * in random pieces. The stream must end or fail with a CompressionError,
 * never hang; an unmutated seed must give back exactly what was compressed; output is drained as it comes (a small input that inflates a
 * lot must stream, not pile up).
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as binding from 'zstd-napi/binding';
import { zstdCompress } from '../../../transforms/zstd-compress';
import { zstdDecompress } from '../../../transforms/zstd-decompress';
import { chunked, mutate } from '../support/random';
import { MiB, type FuzzTarget } from '../support/target';

interface Ctx {
  seeds: Buffer[];
  /** What each seed decompresses to. */
  plain: Buffer[];
}

function sample(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i % 97 < 50 ? 0x41 + (i % 13) : (i * 2654435761) >>> 24) & 0xff;
  return b;
}

async function pgbbFrame(data: Buffer, level: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), zstdCompress({ level, workers: 0 }), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

function plainFrame(data: Buffer, level: number): Buffer {
  const dst = Buffer.alloc(binding.compressBound(data.length));
  return dst.subarray(0, new binding.CCtx().compress(dst, data, level));
}

async function setup(): Promise<Ctx> {
  const data = sample(40000);
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([8, 0, 0, 0]), Buffer.alloc(8, 7)]);
  return {
    seeds: [
      await pgbbFrame(data, 1),
      await pgbbFrame(data, 9),
      plainFrame(data, 1),
      plainFrame(sample(300), 3),
      Buffer.concat([plainFrame(data.subarray(0, 5000), 1), skippable, plainFrame(data.subarray(5000, 9000), 1)]),
      plainFrame(Buffer.alloc(200000), 1), // long runs: RLE blocks
    ],
    plain: [data, data, data, sample(300), data.subarray(0, 9000), Buffer.alloc(200000)],
  };
}

export const decompress: FuzzTarget<Ctx> = {
  setup,
  // libzstd's window (≤ 128 MiB) is native memory; the bound is on top of that.
  limits: { rss: 256 * MiB },
  async run(rng, ctx) {
    const k = rng.int(ctx.seeds.length);
    // Now and then a seed as it is: it must give back exactly what was compressed.
    const intact = rng.chance(0.1);
    const input = intact ? ctx.seeds[k]! : rng.chance(0.05) ? rng.bytes(rng.int(500)) : mutate(rng, ctx.seeds[k]!);
    let out = 0;
    const kept: Buffer[] = [];
    const d = zstdDecompress({ name: 'fuzz.tar.zst' });
    await pipeline(
      Readable.from(chunked(rng, input, [61, 512, 4096, 65536])),
      d,
      new Writable({
        write(c: Buffer, _e, cb) {
          out += c.length;
          if (intact) kept.push(Buffer.from(c));
          cb();
        },
      }),
    );
    assert.equal(d.result?.bytesOut, out);
    if (intact) assert.ok(Buffer.concat(kept).equals(ctx.plain[k]!), `seed ${k} decompresses to what was compressed`);
  },
};
