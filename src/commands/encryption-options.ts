/**
 * The encryption key options, onto keys (src/crypto/age-keys.ts):
 *
 *   backup           --encrypt-passphrase-file F | PGBB_ENCRYPT_PASSPHRASE   (scrypt)
 *                    --encrypt-recipients-file F                            (age1… lines)
 *   restore, verify  --encrypt-passphrase-file F, PGBB_ENCRYPT_PASSPHRASE,
 *                    --encrypt-identity-file F (AGE-SECRET-KEY-1… lines): all are tried
 *
 * Files holding a secret (passphrase, identities) must be 0600 or tighter,
 * or they are refused, as libpq refuses a loose .pgpass. Nothing read is
 * ever put in a message.
 */
import { openRegular, readOpened } from '../io/read-limited';
import { showPath } from '../codec/path-bytes';
import { UsageError } from '../errors';
import { Secret } from '../crypto/secret';
import { checkKeys, type DecryptKey, type EncryptKey } from '../crypto/age-keys';

export const PASSPHRASE_ENV = 'PGBB_ENCRYPT_PASSPHRASE';
const MAX_KEY_FILE_BYTES = 64 * 1024;

async function readKeyFile(file: string, what: string, secret: boolean): Promise<string> {
  const fh = await openRegular(file, what);
  try {
    const st = await fh.stat();
    if (secret && (st.mode & 0o077) !== 0) {
      throw new UsageError(`${what} "${showPath(file)}" has mode 0${(st.mode & 0o777).toString(8)}: it must not be readable by group or others (chmod 0600)`);
    }
    return (await readOpened(fh, file, { maxBytes: MAX_KEY_FILE_BYTES, what })).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The first line, without its newline; an empty one is refused. */
async function passphraseFile(file: string): Promise<Secret> {
  const text = (await readKeyFile(file, 'passphrase file', true)).split(/\r?\n/)[0];
  if (text === '') throw new UsageError(`passphrase file "${showPath(file)}" has an empty first line`);
  return new Secret(text);
}

/** Lines that are not blank or `#` comments. */
function keyLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

function envPassphrase(env: NodeJS.ProcessEnv): Secret | null {
  const v = env[PASSPHRASE_ENV];
  return v ? new Secret(v) : null;
}

export interface KeyOptions {
  encryptPassphraseFile?: string;
  encryptRecipientsFile?: string;
  encryptIdentityFile?: string;
}

/** Backup: the key to encrypt with, or undefined for none. The options win over the environment. */
export async function encryptKeyFrom(o: KeyOptions, env: NodeJS.ProcessEnv = process.env): Promise<EncryptKey | undefined> {
  if (o.encryptPassphraseFile !== undefined && o.encryptRecipientsFile !== undefined) {
    throw new UsageError('give --encrypt-passphrase-file or --encrypt-recipients-file, not both (age encrypts to a passphrase alone)');
  }
  if (o.encryptRecipientsFile !== undefined) {
    const recipients = keyLines(await readKeyFile(o.encryptRecipientsFile, 'recipients file', false));
    if (recipients.length === 0) throw new UsageError(`recipients file "${showPath(o.encryptRecipientsFile)}" names no recipient`);
    const key = { recipients };
    await checkKeys(key, null);
    return key;
  }
  const passphrase = o.encryptPassphraseFile !== undefined ? await passphraseFile(o.encryptPassphraseFile) : envPassphrase(env);
  return passphrase ? { passphrase } : undefined;
}

/** Restore and verify: every key given, or undefined for none. */
export async function decryptKeyFrom(o: KeyOptions, env: NodeJS.ProcessEnv = process.env): Promise<DecryptKey | undefined> {
  const passphrases = [o.encryptPassphraseFile !== undefined ? await passphraseFile(o.encryptPassphraseFile) : null, envPassphrase(env)].filter(
    (p): p is Secret => p !== null,
  );
  const identities =
    o.encryptIdentityFile === undefined ? [] : keyLines(await readKeyFile(o.encryptIdentityFile, 'identity file', true)).map((l) => new Secret(l));
  if (o.encryptIdentityFile !== undefined && identities.length === 0) throw new UsageError(`identity file "${showPath(o.encryptIdentityFile)}" holds no identity`);
  if (passphrases.length === 0 && identities.length === 0) return undefined;
  const key = { passphrases, identities };
  await checkKeys(null, key);
  return key;
}

/**
 * backup -D s3://… --incremental-from, encrypted: the key that opens the
 * parent's chunk map. A passphrase opens what it encrypted; recipients are
 * public keys, so the identity of one of them is needed too.
 */
export async function parentKeyFrom(o: KeyOptions, encrypt: EncryptKey): Promise<DecryptKey | undefined> {
  if (encrypt.passphrase) {
    if (o.encryptIdentityFile !== undefined) throw new UsageError('--encrypt-identity-file goes with --encrypt-recipients-file (a passphrase opens the parent it encrypted)');
    return { passphrases: [encrypt.passphrase] };
  }
  return o.encryptIdentityFile === undefined ? undefined : decryptKeyFrom({ encryptIdentityFile: o.encryptIdentityFile }, {});
}
