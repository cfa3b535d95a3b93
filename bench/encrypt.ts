/**
 * Encryption (transforms/encrypt.ts, decrypt.ts): payload throughput of
 * pgbb's age STREAM (node:crypto ChaCha20-Poly1305) against the
 * age-encryption library's own streaming encrypt (its ChaCha20 in
 * JavaScript), and the fixed cost per file of making and opening a header
 * (scrypt at age's default work factor 2^18, and X25519). Printed, not
 * asserted; on a shared machine the figures are noisy.
 *
 *   node dist/bench/encrypt.js [--gib 2] [--lib-mib 128] [--headers 3]
 *
 * Input: one 256 KiB buffer of random bytes (tar-pack's write size), fed
 * repeatedly into a null sink until <gib> GiB went in. MB/s of plaintext by
 * wall clock and per CPU second (process.cpuUsage: all threads), peak RSS.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encrypt } from '../transforms/encrypt';
import { decrypt } from '../transforms/decrypt';
import { Secret } from '../src/crypto/secret';
import { loadAge, newHeader, openHeader } from '../src/crypto/age-keys';
import { numArg, onlyKnown } from './support/args';

const PIECE = 256 * 1024;
const MB = 1e6;

/** `total` bytes of `source` repeated, in slices of at most PIECE bytes. */
function pieces(source: Buffer, total: number): Readable {
  let done = 0;
  return new Readable({
    read() {
      if (done >= total) return void this.push(null);
      const at = done % source.length;
      const n = Math.min(PIECE, total - done, source.length - at);
      done += n;
      this.push(source.subarray(at, at + n));
    },
  });
}

async function measure(name: string, bytes: number, run: () => Promise<void>): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  const cpu = (c.user + c.system) / 1e6;
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(`${name.padEnd(44)} ${(bytes / MB / wall).toFixed(0).padStart(6)} MB/s wall  ${(bytes / MB / cpu).toFixed(0).padStart(6)} MB/s per CPU s  (${wall.toFixed(2)} s, CPU ${cpu.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB)`);
}

const nullSink = () => new Writable({ write: (_c, _e, cb) => cb() });

async function main(): Promise<void> {
  onlyKnown(['gib', 'lib-mib', 'headers']);
  const total = Math.round(numArg('gib', 2) * 1024 ** 3);
  const libTotal = Math.round(numArg('lib-mib', 128) * 1024 ** 2);
  const headers = numArg('headers', 3);
  const age = await loadAge();
  const identity = await age.generateX25519Identity();
  const recipient = await age.identityToRecipient(identity);
  const piece = randomBytes(PIECE);
  const enc = () => encrypt({ key: { recipients: [recipient] } });

  await measure(`pgbb encrypt, ${(total / 1024 ** 3).toFixed(1)} GiB`, total, () => pipeline(pieces(piece, total), enc(), nullSink()));

  // Decrypt: 64 MiB encrypted once, decrypted as often as it takes.
  const sample = 64 * 1024 ** 2;
  const sealed: Buffer[] = [];
  await pipeline(pieces(piece, sample), enc(), new Writable({ write: (c, _e, cb) => (sealed.push(c), cb()) }));
  const file = Buffer.concat(sealed);
  const rounds = Math.max(1, Math.round(total / sample));
  const key = { identities: [new Secret(identity)] };
  await measure(`pgbb decrypt, ${rounds} × 64 MiB`, rounds * sample, async () => {
    for (let i = 0; i < rounds; i++) await pipeline(pieces(file, file.length), decrypt({ key, name: 'bench' }) as Transform, nullSink());
  });

  // The library's own stream (WHATWG streams, ChaCha20 in JavaScript), for comparison.
  await measure(`age-encryption encrypt (JS), ${(libTotal / 1024 ** 2).toFixed(0)} MiB`, libTotal, async () => {
    const e = new age.Encrypter();
    e.addRecipient(recipient);
    const out = await e.encrypt(Readable.toWeb(pieces(piece, libTotal)) as unknown as ReadableStream<Uint8Array>);
    const reader = out.getReader();
    while (!(await reader.read()).done);
  });

  const time = async (what: string, f: () => Promise<unknown>) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < headers; i++) await f();
    console.log(`${what.padEnd(44)} ${(Number(process.hrtime.bigint() - t0) / 1e6 / headers).toFixed(1).padStart(8)} ms per file`);
  };
  const passphrase = new Secret('bench passphrase');
  const made = await newHeader({ passphrase });
  await time('header: new, scrypt 2^18', () => newHeader({ passphrase }));
  await time('header: open, scrypt 2^18', () => openHeader({ passphrases: [passphrase] }, made.header, 'bench'));
  const x = await newHeader({ recipients: [recipient] });
  await time('header: new, X25519', () => newHeader({ recipients: [recipient] }));
  await time('header: open, X25519', () => openHeader(key, x.header, 'bench'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
