/**
 * ManifestFilter (src/codec/manifest-filter.ts): a manifest without some of
 * its files is what the writer makes of the rest, byte for byte, whatever the
 * piece boundaries; a manifest it cannot write again is refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { ManifestError } from '../../../src/errors';
import { buildManifest, parseManifest, type BuildManifestInput } from '../../../src/codec/manifest';
import { ManifestFilter } from '../../../src/codec/manifest-filter';

const input = (withMap: boolean): BuildManifestInput => ({
  version: 2,
  systemIdentifier: '7312345678901234567',
  files: [
    { path: 'backup_label', size: 227, lastModified: '2026-12-02 19:00:00 GMT', checksumAlgorithm: 'CRC32C', checksum: '0badf00d' },
    ...(withMap ? [{ path: 'tablespace_map', size: 60, lastModified: '2026-12-02 19:00:00 GMT', checksumAlgorithm: 'CRC32C' as const, checksum: 'deadbeef' }] : []),
    { path: Buffer.from([0x62, 0xff]), size: 0, lastModified: '2026-12-02 19:00:01 GMT' },
  ],
  walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }],
});

test('dropping tablespace_map gives the manifest built without it, fed in pieces of any size', () => {
  const full = buildManifest(input(true));
  const expected = buildManifest(input(false));
  for (const size of [1, 7, full.length]) {
    const f = new ManifestFilter((p) => p === 'tablespace_map');
    for (let at = 0; at < full.length; at += size) f.write(full.subarray(at, at + size));
    const out = Buffer.concat(f.end());
    assert.ok(out.equals(expected), `pieces of ${size}`);
    assert.equal(parseManifest(out).files.has('tablespace_map'), false);
  }
});

test('a damaged manifest is refused, not written again with a fresh checksum', () => {
  const full = Buffer.from(buildManifest(input(true)).toString('utf8').replace('"Size": 227', '"Size": 228'));
  const f = new ManifestFilter((p) => p === 'tablespace_map');
  f.write(full);
  assert.throws(() => f.end(), ManifestError);
});

test('a version 2 manifest listing files before its System-Identifier is refused in one line', () => {
  const text = buildManifest(input(false)).toString('utf8');
  const moved = text.replace('"System-Identifier": 7312345678901234567,\n', '').replace('"WAL-Ranges"', '"System-Identifier": 7312345678901234567,\n"WAL-Ranges"');
  const body = moved.slice(0, moved.indexOf('"Manifest-Checksum"'));
  const sealed = `${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`;
  const f = new ManifestFilter(() => false);
  assert.throws(() => {
    f.write(Buffer.from(sealed));
    f.end();
  }, /lists files before its System-Identifier/);
});
