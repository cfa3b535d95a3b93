/**
 * Tests for StdoutSink over tarPack() → [zstdCompress()] (sinks/stdout.ts,
 * sinks/packed-output.ts): an output that fails fails the sink; a stream
 * without `end` stays truncated; destroyed mid-stream it closes at once,
 * tears its output down, and its compressor's worker threads are gone after a GC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StdoutSink } from '../../sinks/stdout';
import { sampleEvents } from '../support/synthetic-backup';

test('StdoutSink: an output that fails fails the sink; a stream without end gets no end-of-archive marker', async () => {
  const failing = new Writable({ write: (_c, _e, cb) => cb(new Error('upload refused')) });
  await assert.rejects(pipeline(Readable.from(sampleEvents()), new StdoutSink({ output: failing })), /upload refused/);
  const chunks: Buffer[] = [];
  const output = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
  await assert.rejects(pipeline(Readable.from(sampleEvents().slice(0, -1)), new StdoutSink({ output })), /ended before the backup was complete/);
  const bytes = Buffer.concat(chunks);
  assert.ok(!bytes.subarray(-1024).equals(Buffer.alloc(1024)));
});

test('StdoutSink (zstd) destroyed mid-stream: closes at once, and the compressor\'s worker threads are gone after a GC', async () => {
  // zstd-napi 0.0.13 frees a context only from its finalizer: the sink drops every reference on destroy.
  const script = `
    const { StdoutSink } = require(${JSON.stringify(require.resolve('../../sinks/stdout'))});
    const { Writable } = require('stream');
    const fs = require('fs');
    const threads = () => fs.readdirSync('/proc/self/task').length;
    (async () => {
      const base = threads();
      const data = require('crypto').randomBytes(4 << 20);
      let peak = 0;
      for (let i = 0; i < 3; i++) {
        const output = new Writable({ write: (c, e, cb) => cb() });
        const sink = new StdoutSink({ output, compress: { method: 'zstd', level: 1, workers: 2 } });
        sink.on('error', () => {});
        const w = (ev) => new Promise((r) => sink.write(ev, r));
        await w({ type: 'archive', kind: 'base', name: 'base', location: '' });
        await w({ type: 'entry', path: 'f', kind: 'file', size: 64 << 20, mode: 0o600, mtime: new Date() });
        for (let j = 0; j < 4; j++) await w({ type: 'data', offset: j * data.length, chunk: data });
        await new Promise((r) => setTimeout(r, 20));
        peak = Math.max(peak, threads());
        const t0 = Date.now();
        sink.destroy();
        await new Promise((r) => sink.once('close', r));
        if (Date.now() - t0 > 2000) throw new Error('close took ' + (Date.now() - t0) + ' ms');
        if (!output.destroyed) throw new Error('the output was not torn down');
      }
      for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)); }
      console.log(JSON.stringify({ base, peak, after: threads() }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--expose-gc', '-e', script], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}: ${errOut}`)) : resolve(out))),
  );
  const { base, peak, after } = JSON.parse(stdout) as { base: number; peak: number; after: number };
  assert.ok(peak >= base + 2, `libzstd workers were running (${base} → ${peak} threads)`);
  assert.ok(after <= base, `threads left after destroy + GC: ${after} (baseline ${base})`);
});
