/**
 * The checks a backup_manifest's reader makes once the whole has been read
 * (src/codec/manifest-reader.ts), each as src/common/parse_manifest.c makes
 * it and noting its fault in parseManifest's order (./manifest-faults.ts):
 * the version and the last field, the Manifest-Checksum against the SHA-256
 * of what came before it, and the System-Identifier as a 64-bit integer.
 * Pure: the top-level fields collected, the checksum result, the faults.
 */
import { ManifestError } from '../errors';
import { show } from './manifest-format';
import { unsigned } from './wal-ranges';
import { CHECKSUM, FIRST_KEY, LAST_KEY, SYSTEM_ID, VERSION, type ManifestFaults } from './manifest-faults';

export const VERSION_KEY = 'PostgreSQL-Backup-Manifest-Version';

type TopFields = Record<string, unknown>;

export function checkHeader(top: TopFields, lastKey: string, faults: ManifestFaults): void {
  const version = top[VERSION_KEY];
  // `{}`: the object ended before its first field.
  if (!(VERSION_KEY in top)) faults.note(FIRST_KEY, 'expected version indicator as the first field');
  faults.judge(VERSION, () => {
    const v = unsigned(version, 'manifest version');
    if (v !== 1 && v !== 2) throw new ManifestError(`backup_manifest: unexpected manifest version ${v} (pgbb reads 1 and 2)`);
  });
  if (lastKey !== 'Manifest-Checksum') faults.note(LAST_KEY, 'manifest has no checksum as its last field');
}

/** `sealed`: the SHA-256 of everything before the last line, or why there is none. */
export function checkChecksum(top: TopFields, sealed: { sha256: string } | { fault: string }, faults: ManifestFaults): void {
  const expected = top['Manifest-Checksum'];
  if ('fault' in sealed) return faults.note(CHECKSUM, sealed.fault);
  if (typeof expected !== 'string' || !/^[0-9a-fA-F]{64}$/.test(expected)) return faults.note(CHECKSUM, `invalid manifest checksum "${show(expected)}"`);
  if (sealed.sha256 !== expected.toLowerCase()) faults.note(CHECKSUM, `manifest checksum mismatch: file says ${expected}, contents hash to ${sealed.sha256}`);
}

/** The System-Identifier exceeds 2^53, so the number is taken from its token text (`raw`). */
export function systemIdentifierOf(top: TopFields, raw: string, faults: ManifestFaults): string | undefined {
  if (typeof top['System-Identifier'] !== 'number' || !/^[0-9]+$/.test(raw) || BigInt(raw) >= 1n << 64n) {
    faults.note(SYSTEM_ID, 'manifest system identifier not an unsigned 64-bit integer');
    return undefined;
  }
  return BigInt(raw).toString();
}
