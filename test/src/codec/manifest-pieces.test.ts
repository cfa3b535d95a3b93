/**
 * backup_manifest in pieces (src/codec/manifest-pieces.ts): byte for byte
 * what buildManifest writes — versions 1 and 2, no files, Encoded-Path for
 * names that are not UTF-8, many files — in pieces near the piece size; a
 * bad file is refused as buildManifest refuses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildManifest, parseManifest, type BuildManifestInput } from '../../../src/codec/manifest';
import { buildManifestPieces } from '../../../src/codec/manifest-pieces';
import { pathFromBytes } from '../../../src/codec/path-bytes';

const walRanges = [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }];
const mtime = new Date('2025-03-01T10:00:00Z');

function files(n: number) {
  const out = [{ path: pathFromBytes(Buffer.from([0x62, 0xff, 0x2e])), size: 1, lastModified: mtime, checksumAlgorithm: 'CRC32C' as const, checksum: '00aa11bb' }];
  for (let i = 0; i < n; i++) out.push({ path: `base/5/${16384 + i}`, size: i, lastModified: mtime, checksumAlgorithm: 'CRC32C' as const, checksum: 'deadbeef' });
  return out;
}

test('the pieces concatenate to what buildManifest writes', () => {
  const inputs: BuildManifestInput[] = [
    { version: 1, files: [], walRanges },
    { version: 2, systemIdentifier: '7300000000000000001', files: files(3), walRanges },
    { version: 2, systemIdentifier: '7300000000000000001', files: files(20_000), walRanges },
    { version: 1, files: files(10), walRanges, forceEncode: true },
  ];
  for (const input of inputs) {
    const pieces = [...buildManifestPieces(input, 16 * 1024)];
    const whole = Buffer.concat(pieces);
    assert.ok(whole.equals(buildManifest(input)), `version ${input.version}, ${[...input.files].length} files`);
    for (const p of pieces) assert.ok(p.length <= 16 * 1024 + 512, `piece of ${p.length} bytes`);
    parseManifest(whole);
  }
  assert.ok([...buildManifestPieces({ version: 1, files: files(20_000), walRanges }, 16 * 1024)].length > 50);
});

test('a bad file or version is refused as buildManifest refuses it', () => {
  assert.throws(() => [...buildManifestPieces({ version: 1, files: [{ path: 'a', size: -1, lastModified: mtime }], walRanges })], /invalid size -1 for "a"/);
  assert.throws(() => [...buildManifestPieces({ version: 2, files: [], walRanges })], /version 2 needs a decimal System-Identifier/);
});
