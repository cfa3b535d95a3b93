import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWalCoverage, parseWalRanges } from '../../../src/codec/wal-ranges';
import { ManifestError } from '../../../src/errors';

/** Shaped as backup_manifest.c writes it (PostgreSQL 15). */
const manifest15 = `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
{ "Path": "backup_label", "Size": 225, "Last-Modified": "2024-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "9a2f1c3d" },
{ "Path": "odd \\"WAL-Ranges\\" name", "Size": 0, "Last-Modified": "2024-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/3000028", "End-LSN": "0/3000100" }
],
"Manifest-Checksum": "${'0'.repeat(64)}"}
`;

const twoTimelines = `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
],
"WAL-Ranges": [
{ "Timeline": 2, "Start-LSN": "0/5000060", "End-LSN": "0/6000100" },
{ "Timeline": 1, "Start-LSN": "0/4000028", "End-LSN": "0/5000060" }
],
"Manifest-Checksum": "${'0'.repeat(64)}"}
`;

test('WAL-Ranges are read from the manifest, newest timeline first', () => {
  assert.deepEqual(parseWalRanges(Buffer.from(manifest15)), [{ timeline: 1, start: 0x3000028n, end: 0x3000100n }]);
  assert.deepEqual(
    parseWalRanges(twoTimelines).map((r) => r.timeline),
    [2, 1],
  );
  assert.throws(() => parseWalRanges('{ "Files": [] }'), ManifestError);
  assert.throws(() => parseWalRanges('"WAL-Ranges": [\n],'), /lists no WAL range/);
});

test('coverage: every range on the streamed timeline within the streamed LSNs', () => {
  const ranges = parseWalRanges(manifest15);
  checkWalCoverage(ranges, { timeline: 1, start: 0x3000000n, end: 0x4000000n });
  checkWalCoverage(ranges, { timeline: 1, start: 0x3000000n, end: 0x3000100n });
  assert.throws(
    () => checkWalCoverage(ranges, { timeline: 1, start: 0x3000000n, end: 0x30000ffn }),
    /needs WAL of timeline 1 from 0\/3000028 to 0\/3000100, but streaming covered timeline 1 from 0\/3000000 to 0\/30000FF/,
  );
  assert.throws(() => checkWalCoverage(ranges, { timeline: 1, start: 0x3000030n, end: 0x4000000n }), ManifestError);
  assert.throws(() => checkWalCoverage(parseWalRanges(twoTimelines), { timeline: 2, start: 0x4000000n, end: 0x7000000n }), /timeline 1/);
});

test('one reader for every layout: any valid JSON spacing; a range that does not parse is named as parseManifest names it', async () => {
  const { walRangeFromJson, walRangeLine } = await import('../../../src/codec/wal-ranges');
  const pretty = JSON.stringify({ 'WAL-Ranges': [{ Timeline: 2, 'Start-LSN': '0/5000060', 'End-LSN': '0/6000100' }] }, null, 4);
  assert.deepEqual(parseWalRanges(pretty), [{ timeline: 2, start: 0x5000060n, end: 0x6000100n }]);
  assert.throws(() => parseWalRanges('"WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "zz", "End-LSN": "0/1" }]'), /backup_manifest: could not parse start LSN "zz"/);
  assert.throws(() => parseWalRanges('"WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/1"'), /not valid JSON/);
  assert.throws(() => walRangeFromJson({ Timeline: 1, 'Start-LSN': '0/1', 'End-LSN': '0/2', Colour: 1 }), /unexpected WAL range field "Colour"/);
  assert.throws(() => walRangeFromJson([]), /a WAL range is not an object/);
  assert.equal(walRangeLine({ timeline: 1, startLsn: '0/02000028', endLsn: '0/2000100' }), '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }');
});
