/**
 * age X25519 key files for a test, in `root`: a recipients file (with a
 * comment line, as an operator writes one), the matching identity in a 0600
 * file, and another identity that opens nothing the first encrypted.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { loadAge } from '../../src/crypto/age-keys';

export interface AgeKeyFiles {
  identity: string;
  recipients: string;
  keyFile: string;
  otherKey: string;
}

export async function ageKeyFiles(root: string): Promise<AgeKeyFiles> {
  const age = await loadAge();
  const identity = await age.generateX25519Identity();
  const files = { identity, recipients: join(root, 'recipients'), keyFile: join(root, 'key.txt'), otherKey: join(root, 'other.txt') };
  await fs.writeFile(files.recipients, `# the backup operator\n${await age.identityToRecipient(identity)}\n`);
  await fs.writeFile(files.keyFile, `${identity}\n`, { mode: 0o600 });
  await fs.writeFile(files.otherKey, `${await age.generateX25519Identity()}\n`, { mode: 0o600 });
  return files;
}
