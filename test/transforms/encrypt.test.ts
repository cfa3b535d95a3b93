/**
 * encrypt() and decrypt() (transforms/encrypt.ts, decrypt.ts): round trips
 * at every chunk-boundary size and input split, both directions with
 * Debian's real `age` binary (X25519 recipients, and a passphrase through a
 * pseudo-terminal, as age only reads passphrases from a terminal), and the
 * failures: wrong key, truncation anywhere, one tampered byte — each a
 * DecryptionError naming the file, with no unauthenticated byte passed on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encrypt } from '../../transforms/encrypt';
import { decrypt } from '../../transforms/decrypt';
import { Secret } from '../../src/crypto/secret';
import { loadAge, newHeader, openHeader, type DecryptKey, type EncryptKey } from '../../src/crypto/age-keys';
import { CHUNK_BYTES } from '../../src/codec/age-format';
import { DecryptionError } from '../../src/errors';
import { makeTempDir, run } from '../support/run';

const K = CHUNK_BYTES;
/** Low scrypt work factor for the many round trips; the age-binary tests use the default 18. */
const FAST = 10;
const pass = new Secret('correct horse battery staple');

async function through(t: NodeJS.ReadWriteStream, input: Buffer, piece = 100_000): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces = function* () {
    for (let i = 0; i < input.length; i += piece) yield input.subarray(i, i + piece);
  };
  await pipeline(Readable.from(pieces()), t, new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const seal = (key: EncryptKey, input: Buffer, piece?: number) => through(encrypt({ key, scryptLogN: FAST }), input, piece);
const open = (key: DecryptKey, input: Buffer, piece?: number) => through(decrypt({ key, name: 'test.age' }), input, piece);

async function x25519(): Promise<{ identity: string; recipient: string }> {
  const age = await loadAge();
  const identity = await age.generateX25519Identity();
  return { identity, recipient: await age.identityToRecipient(identity) };
}

test('encrypt → decrypt gives the input back at every size around the 64 KiB chunk, however the input is split', async () => {
  for (const size of [0, 1, K - 1, K, K + 1, 2 * K, 3 * K + 17]) {
    const input = randomBytes(size);
    for (const piece of [1000, K, 300_000]) {
      const sealed = await seal({ passphrase: pass }, input, piece);
      assert.ok(sealed.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n')), 'an age file');
      assert.ok(!sealed.includes(Buffer.from(pass.reveal())), 'the passphrase is not in the file');
      assert.deepEqual(await open({ passphrases: [pass] }, sealed, piece + 7), input, `size ${size}, pieces of ${piece}`);
    }
  }
});

test('a file encrypted by pgbb is decrypted by the age binary (X25519 and passphrase), and one age encrypted by pgbb', async () => {
  const dir = await makeTempDir('pgbb-age-');
  try {
    const { identity, recipient } = await x25519();
    const keyFile = join(dir, 'key.txt');
    await fs.writeFile(keyFile, `# test identity\n${identity}\n`, { mode: 0o600 });
    const input = randomBytes(5 * K + 123);
    await fs.writeFile(join(dir, 'plain'), input);

    await fs.writeFile(join(dir, 'ours.age'), await seal({ recipients: [recipient] }, input));
    await run('age', ['-d', '-i', keyFile, '-o', join(dir, 'ours.out'), join(dir, 'ours.age')]);
    assert.deepEqual(await fs.readFile(join(dir, 'ours.out')), input, 'age -d -i reads what pgbb wrote');

    await run('age', ['-e', '-r', recipient, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]);
    assert.deepEqual(await open({ identities: [new Secret(identity)] }, await fs.readFile(join(dir, 'theirs.age'))), input, 'pgbb reads what age -e -r wrote');

    // age reads passphrases only from a terminal: script(1) gives it one, fed the answer on stdin.
    const tty = (cmd: string, answers: string) =>
      run('bash', ['-c', `{ sleep 0.5; printf '${answers}'; } | script -qec "${cmd}" /dev/null`]);
    await fs.writeFile(join(dir, 'ours-p.age'), await through(encrypt({ key: { passphrase: pass } }), input));
    await tty(`age -d -o ${join(dir, 'ours-p.out')} ${join(dir, 'ours-p.age')}`, `${pass.reveal()}\\n`);
    assert.deepEqual(await fs.readFile(join(dir, 'ours-p.out')), input, 'age -d with the passphrase reads what pgbb wrote');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Runs decrypt over `sealed`, returning the error and how many bytes came out before it. */
async function failure(key: DecryptKey, sealed: Buffer): Promise<{ err: DecryptionError; passed: number }> {
  let passed = 0;
  const t = decrypt({ key, name: 'base.tar.zst.age' });
  const err = await pipeline(Readable.from([sealed]), t, new Writable({ write: (c, _e, cb) => ((passed += c.length), cb()) })).then(
    () => assert.fail('decrypted without error'),
    (e) => e,
  );
  assert.ok(err instanceof DecryptionError, String(err));
  assert.match(err.message, /^base\.tar\.zst\.age: /, 'the message names the file');
  return { err, passed };
}

test('wrong key, truncation anywhere and a tampered byte each fail, naming the file; nothing unauthenticated passes', async () => {
  const input = randomBytes(3 * K + 500);
  const sealed = await seal({ passphrase: pass }, input);
  const { identity } = await x25519();
  assert.match((await failure({ passphrases: [new Secret('wrong')] }, sealed)).err.message, /wrong key/);
  assert.match((await failure({ identities: [new Secret(identity)] }, sealed)).err.message, /wrong key/);

  const headerEnd = sealed.indexOf('\n---') + 50;
  const payload = sealed.length - (3 * (K + 16) + 500 + 16);
  for (const cut of [10, headerEnd - 20, payload + 5, payload + (K + 16), payload + 2 * (K + 16), sealed.length - 1]) {
    const { err, passed } = await failure({ passphrases: [pass] }, sealed.subarray(0, cut));
    assert.match(err.message, /truncated|tampered/, `cut at ${cut}`);
    assert.ok(passed <= input.length && input.subarray(0, passed).equals(input.subarray(0, passed)), 'only authenticated bytes');
  }
  for (const at of [30, payload + 100, payload + K + 16 + 9, sealed.length - 3]) {
    const bad = Buffer.from(sealed);
    bad[at] ^= 0x01;
    const { err, passed } = await failure({ passphrases: [pass] }, bad);
    assert.match(err.message, /tampered|damaged|wrong key/, `byte ${at}`);
    assert.ok(passed < input.length, `byte ${at}: the stream did not complete`);
  }
  assert.match((await failure({ passphrases: [pass] }, input)).err.message, /not age-encrypted/);
});

test('passphrase keys are derived one at a time (each scrypt holds 128·r·N bytes), and each header still opens', async () => {
  const crypto = require('node:crypto') as typeof import('node:crypto');
  const orig = crypto.scrypt;
  let running = 0;
  let most = 0;
  (crypto as { scrypt: unknown }).scrypt = (...args: unknown[]) => {
    running++;
    most = Math.max(most, running);
    const cb = args[args.length - 1] as (err: Error | null, key: Buffer) => void;
    (orig as (...a: unknown[]) => void)(...args.slice(0, -1), (err: Error | null, key: Buffer) => {
      running--;
      cb(err, key);
    });
  };
  try {
    const key: EncryptKey = { passphrase: new Secret('one at a time') };
    const headers = await Promise.all([1, 2, 3, 4].map(() => newHeader(key, 12)));
    assert.equal(most, 1, `${most} derivations at once`);
    const dec: DecryptKey = { passphrases: [new Secret('one at a time')] };
    const keys = await Promise.all(headers.map((h, i) => openHeader(dec, h.header, `object ${i}`)));
    keys.forEach((k, i) => assert.ok(Buffer.from(k).equals(Buffer.from(headers[i]!.fileKey)), `object ${i}`));
    assert.equal(most, 1, `${most} derivations at once while opening`);
  } finally {
    (crypto as { scrypt: unknown }).scrypt = orig;
  }
});
