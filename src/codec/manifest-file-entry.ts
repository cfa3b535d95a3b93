/**
 * One element of a manifest's "Files", as JSON.parse gives it, checked as
 * src/common/parse_manifest.c checks it (pgbb's words). Pure.
 */
import { pathFromBytes } from './path-bytes';
import { CHECKSUM_ALGORITHMS, fail, show, type ChecksumAlgorithm, type ManifestFile } from './manifest-format';
import { unsigned } from './wal-ranges';

const FILE_KEYS = new Set(['Path', 'Encoded-Path', 'Size', 'Last-Modified', 'Checksum-Algorithm', 'Checksum']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseFileEntry(f: unknown): ManifestFile {
  if (!isObject(f)) return fail('a file entry is not an object');
  for (const k of Object.keys(f)) if (!FILE_KEYS.has(k)) fail(`unexpected file field "${show(k)}"`);
  let path: string;
  let rawPath: Buffer | undefined;
  if (f.Path !== undefined && f['Encoded-Path'] !== undefined) fail('both path name and encoded path name');
  if (typeof f.Path === 'string') path = f.Path;
  else if (typeof f['Encoded-Path'] === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(f['Encoded-Path'])) {
    rawPath = Buffer.from(f['Encoded-Path'], 'hex');
    path = pathFromBytes(rawPath);
  } else if (f['Encoded-Path'] !== undefined) return fail(`could not decode file name "${show(f['Encoded-Path'])}"`);
  else return fail('missing path name in a file entry');
  if (f.Size === undefined) fail(`missing size for "${show(path)}"`);
  const file: ManifestFile = { path, size: unsigned(f.Size, `size of "${show(path)}"`), lastModified: typeof f['Last-Modified'] === 'string' ? f['Last-Modified'] : '' };
  if (rawPath) file.rawPath = rawPath;
  const alg = f['Checksum-Algorithm'];
  if (alg === undefined) {
    if (f.Checksum !== undefined) fail(`checksum without algorithm for "${show(path)}"`);
    return file;
  }
  const name = typeof alg === 'string' ? (alg.toUpperCase() as ChecksumAlgorithm) : undefined;
  if (!name || !CHECKSUM_ALGORITHMS.includes(name)) return fail(`unrecognized checksum algorithm "${show(alg)}" for "${show(path)}"`);
  file.checksumAlgorithm = name;
  const sum = f.Checksum ?? '';
  if (typeof sum !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(sum)) fail(`invalid checksum for file "${show(path)}": "${show(sum)}"`);
  if (sum) file.checksum = (sum as string).toLowerCase();
  return file;
}

