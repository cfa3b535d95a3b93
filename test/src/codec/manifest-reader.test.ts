/**
 * The streaming manifest reader (src/codec/manifest-reader.ts): entries
 * handed out as they complete, whatever the split and the JSON layout; the
 * checksum computed along; faults named as parseManifest names them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildManifest, ManifestReader, parseManifest, type ManifestFile } from '../../../src/codec/manifest';
import { createHash } from 'node:crypto';

const files = Array.from({ length: 50 }, (_, i) => ({ path: `base/5/${i}`, size: i * 10, lastModified: '2025-03-01 10:00:00 GMT', checksumAlgorithm: 'CRC32C' as const, checksum: '0000000a' }));
const walRanges = [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }];
const MANIFEST = buildManifest({ version: 2, systemIdentifier: '7710713033429169987', files, walRanges });

function read(pieces: Buffer[]): { got: ManifestFile[]; seenBeforeEnd: number; summary: ReturnType<ManifestReader['end']> } {
  const got: ManifestFile[] = [];
  const r = new ManifestReader({ onFile: (f) => void got.push(f) });
  for (const p of pieces) r.write(p);
  const seenBeforeEnd = got.length;
  return { got, seenBeforeEnd, summary: r.end() };
}

test('every split point: the same entries, header and WAL ranges; entries come before end', () => {
  for (let cut = 0; cut <= MANIFEST.length; cut += 37) {
    const { got, seenBeforeEnd, summary } = read([MANIFEST.subarray(0, cut), MANIFEST.subarray(cut)]);
    assert.equal(got.length, 50);
    assert.equal(seenBeforeEnd, 50);
    assert.deepEqual(got[7], { path: 'base/5/7', size: 70, lastModified: '2025-03-01 10:00:00 GMT', checksumAlgorithm: 'CRC32C', checksum: '0000000a' });
    assert.deepEqual(summary, { version: 2, systemIdentifier: '7710713033429169987', walRanges, files: 50 });
  }
  const bytes = read([...MANIFEST].map((b) => Buffer.from([b])));
  assert.equal(bytes.got.length, 50, 'one byte at a time');
});

test('any JSON layout: pretty-printed, one field per line, sealed over everything before its last line', () => {
  const v1 = buildManifest({ version: 1, files, walRanges });
  const doc = JSON.parse(v1.toString()) as Record<string, unknown>;
  delete doc['Manifest-Checksum'];
  const body = JSON.stringify(doc, null, 2).replace(/\n}$/, ',\n');
  const sealed = Buffer.from(`${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`);
  assert.ok(sealed.toString().split('\n').length > 300, 'one field per line');
  for (const size of [1, 100, 4096]) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < sealed.length; at += size) pieces.push(sealed.subarray(at, at + size));
    const { got, summary } = read(pieces);
    assert.deepEqual(got, [...parseManifest(v1).files.values()]);
    assert.deepEqual(summary.walRanges, walRanges);
  }
});

test('faults: a bad checksum, a duplicate path, a second Files field; entries stop at the first fault', () => {
  const bad = Buffer.from(MANIFEST);
  bad[bad.indexOf('"Size": 70') + 9] = 0x31;
  assert.throws(() => read([bad]), /backup_manifest: manifest checksum mismatch/);
  const dup = buildManifest({ version: 1, files: [files[0], files[1], files[0], files[2]], walRanges });
  const got: ManifestFile[] = [];
  const r = new ManifestReader({ onFile: (f) => void got.push(f) });
  r.write(dup);
  assert.throws(() => r.end(), /duplicate path name "base\/5\/0"/);
  assert.equal(got.length, 2, 'nothing after the fault');
  const twice = Buffer.from(MANIFEST.toString().replace('"WAL-Ranges": [', '"Files": [],\n"WAL-Ranges": ['));
  assert.throws(() => read([twice]), /duplicate top-level field "Files"/);
  assert.throws(() => read([Buffer.from([0x7b, 0xff, 0x0a])]), /not valid UTF-8/);
  assert.throws(() => read([MANIFEST.subarray(0, 500)]), /not valid JSON \(Unexpected end of JSON input\)/);
});

test('a piece larger than the reader decodes at a time: multi-byte paths straddling each slice read as in small pieces', () => {
  // 2,000 entries with a 3-byte character in every path (~300 KB): some character spans
  // each 32 KiB slice the reader decodes; one piece must give what 1,000-byte pieces give.
  const wide = Array.from({ length: 2000 }, (_, i) => ({ ...files[0]!, path: `base/5/\u20ac${'x'.repeat(i % 7)}${i}` }));
  const m = buildManifest({ version: 2, systemIdentifier: '7710713033429169987', files: wide, walRanges });
  assert.ok(m.length > 5 * 32 * 1024);
  const whole = read([m]);
  const small: Buffer[] = [];
  for (let at = 0; at < m.length; at += 1000) small.push(m.subarray(at, at + 1000));
  assert.deepEqual(whole.got, read(small).got);
  assert.deepEqual(whole.got.map((f) => f.path), wide.map((f) => f.path));
  assert.equal(whole.summary.files, 2000);
  // Invalid UTF-8 right after a slice boundary is still refused.
  const bad = Buffer.from(m);
  bad[32 * 1024 + 1] = 0xff;
  assert.throws(() => read([bad]), /not valid UTF-8/);
});
