/**
 * age headers: making one for a new file (a fresh file key wrapped for a
 * passphrase or for X25519 recipients) and opening one (the file key back,
 * the header's MAC checked). The payload is the transforms' job
 * (transforms/encrypt.ts, decrypt.ts), with node:crypto.
 *
 * Recipient parsing, X25519 wrapping, header encoding/parsing and the MAC
 * come from `age-encryption` (typage, the age reference implementation in
 * JavaScript), through its public Recipient/Identity interfaces. Two things
 * are done here instead: its payload code, which runs ChaCha20 in
 * JavaScript (bench/encrypt.ts), and its scrypt, which is synchronous
 * JavaScript that holds the event loop for a second per file: the
 * passphrase stanza (age spec: "scrypt" recipient) uses node:crypto's
 * scrypt on the thread pool.
 * The library is ESM-only and this project CommonJS: it is loaded once with
 * a real import(), which tsc would otherwise rewrite into require().
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import type * as AgeModule from 'age-encryption';
import { DecryptionError, UsageError } from '../errors';
import { NONCE_BYTES, TAG_BYTES, headerLength } from '../codec/age-format';
import type { Secret } from './secret';

type Age = typeof AgeModule;
type Stanza = AgeModule.Stanza;

/** Encrypt for one passphrase (scrypt) or for X25519 recipients (`age1…`), never both (age allows scrypt alone). */
export type EncryptKey = { passphrase: Secret; recipients?: undefined } | { recipients: string[]; passphrase?: undefined };
/** Any of these may open a file. */
export interface DecryptKey {
  passphrases?: Secret[];
  /** `AGE-SECRET-KEY-1…` lines. */
  identities?: Secret[];
}

/** age's default work factor (2^18: 256 MiB and about half a second per file). */
export const SCRYPT_LOG_N = 18;
/** Highest work factor a file may ask for (1 GiB of memory), as typage and age's own limits. */
const MAX_SCRYPT_LOG_N = 20;
const SCRYPT_LABEL = Buffer.from('age-encryption.org/v1/scrypt', 'latin1');

const importEsm = new Function('id', 'return import(id)') as (id: string) => Promise<Age>;
let loaded: Promise<Age> | null = null;
export function loadAge(): Promise<Age> {
  return (loaded ??= importEsm('age-encryption'));
}

/**
 * One derivation at a time, process-wide: each holds 128·r·N bytes while it
 * runs (256 MiB at age's default), and a backup's objects (archives, WAL,
 * manifest, chunk map) ask for theirs together on the thread pool: an
 * encrypted S3 backup of a small cluster peaked at 641 MB that way.
 */
let derivations: Promise<unknown> = Promise.resolve();

function scryptKey(passphrase: Secret, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  const run = derivations.then(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(passphrase.reveal(), Buffer.concat([SCRYPT_LABEL, salt]), 32, { N, r: 8, p: 1, maxmem: 2 * 128 * 8 * N }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
  );
  derivations = run.catch(() => {});
  return run;
}

const ZERO_NONCE = Buffer.alloc(12);

function sealFileKey(key: Buffer, fileKey: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: TAG_BYTES });
  return Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
}

function openFileKey(key: Buffer, body: Uint8Array): Buffer | null {
  if (body.length !== 16 + TAG_BYTES) return null;
  const d = createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: TAG_BYTES });
  d.setAuthTag(body.subarray(16));
  try {
    return Buffer.concat([d.update(body.subarray(0, 16)), d.final()]);
  } catch {
    return null;
  }
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

function scryptRecipient(age: Age, passphrase: Secret, logN: number): AgeModule.Recipient {
  return {
    async wrapFileKey(fileKey) {
      const salt = randomBytes(16);
      return [new age.Stanza(['scrypt', b64(salt), String(logN)], sealFileKey(await scryptKey(passphrase, salt, logN), fileKey))];
    },
  };
}

function scryptIdentity(passphrase: Secret): AgeModule.Identity {
  return {
    async unwrapFileKey(stanzas: Stanza[]) {
      const s = stanzas.find((x) => x.args[0] === 'scrypt');
      if (!s) return null;
      if (stanzas.length !== 1) throw new Error('a scrypt stanza must be the only one');
      const [, saltText, logText] = s.args;
      const salt = Buffer.from(saltText ?? '', 'base64');
      if (s.args.length !== 3 || salt.length !== 16 || b64(salt) !== saltText || !/^[1-9][0-9]?$/.test(logText)) throw new Error('invalid scrypt stanza');
      const logN = Number(logText);
      if (logN > MAX_SCRYPT_LOG_N) throw new Error(`scrypt work factor 2^${logN} is above the 2^${MAX_SCRYPT_LOG_N} accepted`);
      return openFileKey(await scryptKey(passphrase, salt, logN), s.body);
    },
  };
}

/** A new file's header and its file key. `logN`: scrypt work factor (tests and benches may lower it). */
export async function newHeader(key: EncryptKey, logN = SCRYPT_LOG_N): Promise<{ header: Buffer; fileKey: Uint8Array }> {
  const age = await loadAge();
  const e = new age.Encrypter();
  if (key.passphrase) e.addRecipient(scryptRecipient(age, key.passphrase, logN));
  else for (const r of key.recipients) e.addRecipient(r);
  // The file key the library draws, seen by a recipient that adds no stanza.
  let fileKey: Uint8Array | null = null;
  e.addRecipient({ wrapFileKey: (k) => ((fileKey = k), []) });
  // An empty file is header ‖ nonce ‖ one empty final chunk: the header is what comes before.
  const empty = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const header = empty.subarray(0, empty.length - NONCE_BYTES - TAG_BYTES);
  if (!fileKey || headerLength(header) !== header.length) throw new Error('age-encryption produced an unexpected header');
  return { header, fileKey };
}

/** The file key of a header, or a DecryptionError naming `where` (the wrong key, a tampered or damaged header). */
export async function openHeader(key: DecryptKey, header: Buffer, where: string): Promise<Uint8Array> {
  const age = await loadAge();
  const d = new age.Decrypter();
  for (const p of key.passphrases ?? []) d.addIdentity(scryptIdentity(p));
  for (const i of key.identities ?? []) d.addIdentity(i.reveal());
  try {
    return await d.decryptHeader(header);
  } catch (err) {
    const m = (err as Error).message ?? '';
    if (m.includes('no identity matched')) throw new DecryptionError(`${where}: wrong key (not encrypted to the passphrase or identities given)`);
    if (m.includes('HMAC')) throw new DecryptionError(`${where}: encryption header was tampered with (its MAC does not match)`);
    throw new DecryptionError(`${where}: damaged encryption header (${m})`);
  }
}

/** Refuses recipients and identities the library cannot use, before a backup or restore starts. */
export async function checkKeys(enc: EncryptKey | null, dec: DecryptKey | null): Promise<void> {
  const age = await loadAge();
  for (const r of enc?.recipients ?? []) {
    try {
      new age.Encrypter().addRecipient(r);
      // A recipient's key is only decoded when used.
      await newHeader({ recipients: [r] });
    } catch {
      throw new UsageError(`invalid age recipient "${r.length > 80 ? r.slice(0, 80) + '…' : r}"`);
    }
  }
  for (const [n, i] of (dec?.identities ?? []).entries()) {
    try {
      const d = new age.Decrypter();
      d.addIdentity(i.reveal());
    } catch {
      // Never the identity itself: it is a secret.
      throw new UsageError(`identity ${n + 1} of the identity file is not an age X25519 identity (AGE-SECRET-KEY-1…)`);
    }
  }
}
