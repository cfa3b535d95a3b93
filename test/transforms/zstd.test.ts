/**
 * zstd-compress and zstd-decompress: round trips at the sizes that break
 * codecs (0 bytes, 1 byte, 100 MB), interoperability with the system zstd in
 * both directions, every truncation point, garbage, destroy mid-stream (the
 * native worker threads go away) and backpressure on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { jobBytes, zstdCompress, type ZstdCompressOptions } from '../../transforms/zstd-compress';
import { zstdDecompress } from '../../transforms/zstd-decompress';
import { CompressionError, UsageError } from '../../src/errors';

/** Rows of text that compress like table data does (~5–10×), deterministic. */
function compressible(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0;
  let at = 0;
  for (let row = 0; at < size; row++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    at += out.write(`${row}|${x % 100000}|${(x >>> 7) % 977}|        filler ${row % 13}\n`, at);
  }
  return out;
}

function* slices(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

function collect(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      into.push(chunk);
      cb();
    },
  });
}

async function compress(data: Buffer, opts: ZstdCompressOptions, chunk = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  const c = zstdCompress(opts);
  await pipeline(Readable.from(slices(data, Math.max(chunk, 1)), { objectMode: false }), c, collect(out));
  const z = Buffer.concat(out);
  assert.deepEqual(c.result, { bytesIn: data.length, bytesOut: z.length });
  return z;
}

async function decompress(parts: Buffer[], name?: string): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts, { objectMode: false }), zstdDecompress({ name }), collect(out));
  return Buffer.concat(out);
}

/** Runs the system zstd with `input` on stdin; resolves with stdout, rejects on a non-zero exit. */
function systemZstd(args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd ${args.join(' ')}: exit ${code}: ${err}`))));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('round trip and system zstd -d: 0 bytes, 1 byte, random and compressible data, levels 1/3/19, 0 and 2 workers', async () => {
  const inputs: Array<[string, Buffer]> = [
    ['0 bytes', Buffer.alloc(0)],
    ['1 byte', Buffer.from([0x42])],
    ['1 MB random', randomBytes(1_000_000)],
    ['3 MB compressible', compressible(3_000_000)],
    ['90 kB compressible', compressible(90_000, 4)],
  ];
  for (const [what, data] of inputs) {
    // Level 19 runs at a few MB/s: only on the small inputs.
    const levels = data.length > 100_000 ? [{ level: 1, workers: 0 }, { level: 1, workers: 2 }, { level: 3 }] : [{ level: 1, workers: 2 }, { level: 3 }, { level: 19, workers: 0 }];
    for (const opts of levels) {
      const label = `${what} ${JSON.stringify(opts)}`;
      const z = await compress(data, opts, what === '1 byte' ? 1 : 7919);
      assert.ok(z.length > 0, `${label}: even empty input makes a frame`);
      assert.ok((await decompress([z])).equals(data), `${label}: pgbb round trip`);
      assert.ok((await systemZstd(['-dc'], z)).equals(data), `${label}: zstd -d`);
      if (what.includes('compressible')) assert.ok(z.length < data.length / 3, `${label}: ${z.length} bytes`);
    }
  }
});

test('100 MB (random and compressible halves, 32 KiB writes like tar-stream) round trips through pgbb and through zstd -d', async () => {
  const data = Buffer.concat([compressible(50_000_000, 7), randomBytes(50_000_000)]);
  const z = await compress(data, { level: 1, workers: 2 }, 32 * 1024);
  assert.ok(z.length < 65_000_000, `${z.length} bytes: the compressible half shrank`);
  assert.equal(sha(await decompress([...slices(z, 100_000)])), sha(data));
  assert.equal(sha(await systemZstd(['-dc'], z)), sha(data));
});

test('the decoder takes its input split at every byte boundary', async () => {
  const data = compressible(8_000, 3);
  const z = await compress(data, { level: 3, workers: 0 });
  for (let i = 0; i <= z.length; i++) {
    assert.ok((await decompress([z.subarray(0, i), z.subarray(i)])).equals(data), `split at ${i}`);
  }
  assert.ok((await decompress([...slices(z, 1)])).equals(data), 'one byte at a time');
});

test('the decoder reads the zstd CLI output, concatenated frames and skippable frames', async () => {
  const a = compressible(500_000, 11);
  const b = randomBytes(200_000);
  const za = await systemZstd(['-c', '-19'], a);
  const zb = await systemZstd(['-c', '--no-check', '-1'], b);
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a50, 0);
  skippable.writeUInt32LE(5, 4);
  skippable.write('pgbb!', 8);
  const out: Buffer[] = [];
  const d = zstdDecompress();
  await pipeline(Readable.from([za, skippable, zb, Buffer.alloc(0)], { objectMode: false }), d, collect(out));
  assert.ok(Buffer.concat(out).equals(Buffer.concat([a, b])));
  assert.equal(d.result!.frames, 3);
  assert.equal(d.result!.bytesIn, za.length + skippable.length + zb.length);
});

test('a frame cut at any point is a CompressionError that says truncated and names the file', async () => {
  const z = await compress(compressible(5_000, 5), { level: 3, workers: 0 });
  for (let len = 1; len < z.length; len++) {
    await assert.rejects(decompress([z.subarray(0, len)], 'base.tar.zst'), (e: unknown) => {
      assert.ok(e instanceof CompressionError, String(e));
      assert.equal(e.code, 'compression');
      assert.match(e.message, /^zstd data in "base\.tar\.zst" is truncated: it ends inside a zstd frame after \d+ compressed bytes$/);
      return true;
    }, `cut at ${len}`);
  }
  // Two whole frames and a third cut short: still truncated.
  await assert.rejects(decompress([z, z, z.subarray(0, 10)]), /truncated/);
});

test('garbage, a flipped bit and trailing junk are CompressionErrors, never a crash or a hang', async () => {
  const data = compressible(300_000, 9);
  const z = await compress(data, { level: 3, workers: 0 });
  const flipped = Buffer.from(z);
  flipped[Math.floor(z.length / 2)] ^= 0x10;
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['text', [Buffer.from('this is not zstd at all\n'.repeat(100))], /^zstd data in "x" is corrupt or not zstd \(after 0 compressed bytes\): /],
    ['tar bytes', [Buffer.alloc(10240)], /corrupt or not zstd/],
    ['flipped bit', [flipped], /corrupt or not zstd|checksum/i],
    ['trailing junk', [z, Buffer.from('junk after the frame')], /corrupt or not zstd \(after \d+ compressed bytes\)/],
    ['empty', [], /^zstd data in "x" is empty: no zstd frame/],
  ];
  for (const [what, parts, re] of cases) {
    const run = decompress(parts, 'x');
    const outcome = await Promise.race([run.then(() => 'resolved', (e: unknown) => e), sleep(10_000, 'hang')]);
    assert.ok(outcome instanceof CompressionError, `${what}: ${String(outcome)}`);
    assert.match(outcome.message, re, what);
  }
});

test('libzstd jobs are 1 MiB with workers up to level 6, libzstd\'s own size from level 7 or single-threaded', () => {
  for (const level of [1, 3, 6]) assert.equal(jobBytes(level, 2), 1024 * 1024, `level ${level}`);
  for (const level of [7, 9, 19]) assert.equal(jobBytes(level, 2), undefined, `level ${level}`);
  assert.equal(jobBytes(3, 0), undefined, 'no workers: no jobs');
  assert.equal(jobBytes(1, 1), 1024 * 1024);
});

test('bad options are UsageErrors thrown by the factory', () => {
  for (const opts of [{ level: 0 }, { level: 20 }, { level: 2.5 }, { workers: -1 }, { workers: 257 }, { workers: 1.5 }]) {
    assert.throws(() => zstdCompress(opts), (e: unknown) => e instanceof UsageError && /out of range/.test(e.message), JSON.stringify(opts));
  }
});

test('destroying a compressor mid-stream closes at once, and its worker threads are gone after a GC', async () => {
  // In a child with --expose-gc: counts this process's threads before, after destroy, after GC.
  const script = `
    const { zstdCompress } = require(${JSON.stringify(require.resolve('../../transforms/zstd-compress'))});
    const fs = require('fs');
    const threads = () => fs.readdirSync('/proc/self/task').length;
    (async () => {
      const base = threads();
      const data = require('crypto').randomBytes(8 << 20);
      let peak = 0;
      for (let i = 0; i < 4; i++) {
        const c = zstdCompress({ level: 1, workers: 2 });
        c.on('error', () => {});
        c.write(data);
        c.write(data);
        await new Promise((r) => setTimeout(r, 20));
        peak = Math.max(peak, threads());
        const t0 = Date.now();
        c.destroy();
        await new Promise((r) => c.once('close', r));
        if (Date.now() - t0 > 2000) throw new Error('close took ' + (Date.now() - t0) + ' ms');
      }
      for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)); }
      console.log(JSON.stringify({ base, peak, after: threads() }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--expose-gc', '-e', script], { timeout: 60_000 }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message}: ${errOut}`)) : resolve(out),
    ),
  );
  const { base, peak, after } = JSON.parse(stdout) as { base: number; peak: number; after: number };
  assert.ok(peak >= base + 2, `libzstd workers were running (${base} → ${peak} threads)`);
  assert.ok(after <= base, `threads left after destroy + GC: ${after} (baseline ${base})`);
});

test('destroying a decompressor with a write pending closes at once', async () => {
  const z = await compress(compressible(5_000_000, 2), { level: 1, workers: 0 });
  const d = zstdDecompress();
  d.write(z.subarray(0, 100_000)); // nobody reads: the write stays pending
  await sleep(10);
  d.destroy();
  const closed = await Promise.race([new Promise((r) => d.once('close', () => r('closed'))), sleep(2000, 'hang')]);
  assert.equal(closed, 'closed');
});

test('backpressure: a stalled consumer stops the compressor pulling from its source', async () => {
  let generated = 0;
  const source = new Readable({
    read() {
      generated += 1 << 20;
      this.push(randomBytes(1 << 20));
    },
  });
  let release: (() => void) | null = null;
  let received = 0;
  const stalled = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      if (received > 4 << 20) release = cb; // stall after 4 MB
      else cb();
    },
  });
  const c = zstdCompress({ level: 1, workers: 2 });
  const done = pipeline(source, c, stalled).catch((e: Error) => e);
  await sleep(1000);
  const stalledAt = generated;
  await sleep(500);
  // zstd's job buffers, the transform's highWaterMarks and the source's own: tens of MB at most.
  assert.ok(stalledAt < 48 << 20, `source read ${stalledAt} bytes while the consumer stalled`);
  assert.equal(generated, stalledAt, 'nothing more was read while stalled');
  assert.ok(release, 'the consumer did stall');
  source.destroy();
  await done;
});

test('backpressure: a zstd bomb (1 GB of zeros) is decoded only as fast as it is read', async () => {
  const zeros = Buffer.alloc(1 << 20);
  const parts: Buffer[] = [];
  await pipeline(Readable.from((function* () { for (let i = 0; i < 1024; i++) yield zeros; })(), { objectMode: false }), zstdCompress({ level: 3, workers: 0 }), collect(parts));
  const z = Buffer.concat(parts);
  assert.ok(z.length < 100_000, `bomb is ${z.length} bytes`);
  const d = zstdDecompress();
  d.write(z);
  d.end();
  await sleep(300);
  assert.ok(d.readableLength <= 512 * 1024, `decoded ahead of the reader: ${d.readableLength} bytes`);
  let total = 0;
  let maxBuffered = 0;
  await pipeline(
    d,
    new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        total += chunk.length;
        maxBuffered = Math.max(maxBuffered, d.readableLength);
        cb();
      },
    }),
  );
  assert.equal(total, 1 << 30);
  assert.ok(maxBuffered <= 512 * 1024, `buffered up to ${maxBuffered} bytes`);
});
