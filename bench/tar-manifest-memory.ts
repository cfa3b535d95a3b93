/**
 * Peak RSS of `pgbb verify -` on a crafted zstd stream whose backup_manifest
 * member is huge (zeros: a few dozen KiB compressed), printed, not asserted.
 *
 * The stream is a real `-D -` stream (test/support/synthetic-backup.ts) up to
 * its manifest member, whose header then claims `--mib` MiB, followed by that
 * many zero bytes and the end-of-archive blocks, all through `zstd -1`.
 * Each size runs the built CLI under /usr/bin/time -v; the figure is its
 * "Maximum resident set size". The manifest is refused (zeros are not JSON,
 * or it is over LIMITS.manifest); what matters is how much memory that took.
 *
 *   node dist/bench/tar-manifest-memory.js [--mib 256,1024,1025]
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { encodeHeader } from '../src/codec/tar/encode-header';
import { sampleStream } from '../test/support/synthetic-backup';
import { PGBB_CLI } from '../test/support/pgbb';

const MIB = 1024 * 1024;

/** The crafted stream, zstd-compressed, written to `file`; returns its size. */
async function craft(file: string, size: number): Promise<number> {
  const stream = await sampleStream();
  let at = -1;
  for (let i = 0; i < stream.length; i += 512) if (stream.toString('latin1', i, i + 16) === 'backup_manifest\0') at = i;
  if (at < 0) throw new Error('sample stream has no backup_manifest member');
  const z = spawn('zstd', ['-1', '-q', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out = createWriteStream(file);
  z.stdout.pipe(out);
  const write = async (b: Buffer) => {
    if (!z.stdin.write(b)) await once(z.stdin, 'drain');
  };
  await write(stream.subarray(0, at));
  await write(encodeHeader({ name: 'backup_manifest', type: '0', size, mode: 0o600, mtime: new Date() }));
  const zeros = Buffer.alloc(4 * MIB);
  for (let left = size; left > 0; left -= zeros.length) await write(left >= zeros.length ? zeros : zeros.subarray(0, left));
  await write(Buffer.alloc(((512 - (size % 512)) % 512) + 1024));
  z.stdin.end();
  await once(out, 'finish');
  return (await fs.stat(file)).size;
}

async function verifyRss(file: string): Promise<{ kib: number; seconds: number; stderr: string }> {
  const child = spawn('/usr/bin/time', ['-v', process.execPath, PGBB_CLI, 'verify', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const began = Date.now();
  createReadStream(file).pipe(child.stdin).on('error', () => {});
  await once(child, 'close');
  const kib = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN);
  const message = stderr.split('\n').find((l) => l.startsWith('pgbb:')) ?? '(no pgbb line)';
  return { kib, seconds: (Date.now() - began) / 1000, stderr: message };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--mib');
  const sizes = (i > 0 ? process.argv[i + 1]! : '256,1024,1025').split(',').map(Number);
  const dir = await fs.mkdtemp(join(tmpdir(), 'pgbb-manifest-bench-'));
  try {
    for (const mib of sizes) {
      const file = join(dir, 'stream.tar.zst');
      const compressed = await craft(file, mib * MIB);
      const r = await verifyRss(file);
      console.log(`manifest member ${mib} MiB (${(compressed / 1024).toFixed(0)} KiB compressed): peak RSS ${(r.kib / 1024).toFixed(0)} MiB, ${r.seconds.toFixed(1)} s; ${r.stderr}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
