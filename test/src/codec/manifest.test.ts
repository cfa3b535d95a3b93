/**
 * Tests for the backup_manifest codec (src/codec/manifest.ts): named
 * fixtures written out by hand in the exact layout PostgreSQL 15 and 17 write
 * (sealed with a SHA-256 computed here, independently of the builder), the
 * builder reproducing them byte for byte, round trips, every truncation, bad
 * checksums, Encoded-Path, escape_json, CRC32C byte order, WAL-Ranges across
 * timelines. A real server's manifest is round-tripped in
 * test/integration/manifest.test.ts.
 */
import { test } from 'node:test';
import * as crc32c from 'fast-crc32c';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManifestError } from '../../../src/errors';
import {
  buildManifest,
  crc32cHex,
  escapeJson,
  formatLastModified,
  parseManifest,
  walRangesFor,
  type BuildManifestInput,
  type ManifestFileInput,
} from '../../../src/codec/manifest';
import { FileDigest, FileTracker, manifestPathOf } from '../../../src/manifest/file-tracker';


/** Appends the Manifest-Checksum line the way backup_manifest.c does. */
function seal(body: string): Buffer {
  const sum = createHash('sha256').update(body, 'utf8').digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${sum}"}\n`, 'utf8');
}

/** What a PostgreSQL 15 server sends for a tiny cluster with one tablespace and -X fetch. */
const PG15_BODY =
  '{ "PostgreSQL-Backup-Manifest-Version": 1,\n' +
  '"Files": [\n' +
  '{ "Path": "pg_tblspc/16384/PG_15_202209061/5/16393", "Size": 8192, "Last-Modified": "2025-03-01 10:00:01 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "b6126311" },\n' +
  '{ "Path": "backup_label", "Size": 226, "Last-Modified": "2025-03-01 10:00:05 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "0579f2ca" },\n' +
  '{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2025-03-01 09:59:58 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "64440205" },\n' +
  '{ "Path": "global/pg_control", "Size": 8192, "Last-Modified": "2025-03-01 10:00:05 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "43872087" },\n' +
  '{ "Path": "pg_wal/archive_status/000000010000000000000002.done", "Size": 0, "Last-Modified": "2025-03-01 10:00:05 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }\n' +
  '],\n' +
  '"WAL-Ranges": [\n' +
  '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n' +
  '],\n';
const PG15_MANIFEST = seal(PG15_BODY);

const PG15_FILES: ManifestFileInput[] = [
  { path: 'pg_tblspc/16384/PG_15_202209061/5/16393', size: 8192, lastModified: new Date('2025-03-01T10:00:01Z'), checksumAlgorithm: 'CRC32C', checksum: 'b6126311' },
  { path: 'backup_label', size: 226, lastModified: new Date('2025-03-01T10:00:05.900Z'), checksumAlgorithm: 'CRC32C', checksum: '0579f2ca' },
  { path: 'PG_VERSION', size: 3, lastModified: new Date('2025-03-01T09:59:58Z'), checksumAlgorithm: 'CRC32C', checksum: '64440205' },
  { path: 'global/pg_control', size: 8192, lastModified: new Date('2025-03-01T10:00:05Z'), checksumAlgorithm: 'CRC32C', checksum: '43872087' },
  { path: 'pg_wal/archive_status/000000010000000000000002.done', size: 0, lastModified: '2025-03-01 10:00:05 GMT', checksumAlgorithm: 'CRC32C', checksum: '00000000' },
];
const PG15_INPUT: BuildManifestInput = {
  version: 1,
  files: PG15_FILES,
  walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }],
};

/** PostgreSQL 17: version 2, System-Identifier beyond 2^53 on line 2. */
const PG17_BODY =
  '{ "PostgreSQL-Backup-Manifest-Version": 2,\n' +
  '"System-Identifier": 7710713033429169987,\n' +
  '"Files": [\n' +
  '{ "Path": "backup_label", "Size": 216, "Last-Modified": "2026-11-21 19:44:42 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "0579f2ca" }\n' +
  '],\n' +
  '"WAL-Ranges": [\n' +
  '{ "Timeline": 1, "Start-LSN": "0/6000028", "End-LSN": "0/6000120" }\n' +
  '],\n';
const PG17_MANIFEST = seal(PG17_BODY);

test('PG15 fixture: the builder writes it byte for byte', () => {
  assert.equal(buildManifest(PG15_INPUT).toString('utf8'), PG15_MANIFEST.toString('utf8'));
});

test('PG15 fixture: parsed fields', () => {
  const m = parseManifest(PG15_MANIFEST);
  assert.equal(m.version, 1);
  assert.equal(m.systemIdentifier, undefined);
  assert.equal(m.files.size, 5);
  assert.deepEqual(m.files.get('global/pg_control'), {
    path: 'global/pg_control',
    size: 8192,
    lastModified: '2025-03-01 10:00:05 GMT',
    checksumAlgorithm: 'CRC32C',
    checksum: '43872087',
  });
  assert.deepEqual([...m.files.keys()][0], 'pg_tblspc/16384/PG_15_202209061/5/16393');
  assert.deepEqual(m.walRanges, [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }]);
});

test('PG17 fixture: System-Identifier kept exactly as a string, and rebuilt byte for byte', () => {
  const m = parseManifest(PG17_MANIFEST);
  assert.equal(m.version, 2);
  assert.equal(m.systemIdentifier, '7710713033429169987');
  assert.notEqual(String(JSON.parse('7710713033429169987')), '7710713033429169987', 'JSON.parse would have lost it');
  assert.ok(buildManifest(m).equals(PG17_MANIFEST));
});

test('round trip: parse(build(x)) returns x, build(parse(m)) returns m', () => {
  const m = parseManifest(buildManifest(PG15_INPUT));
  assert.deepEqual(
    [...m.files.values()].map((f) => [f.path, f.size, f.lastModified, f.checksum]),
    PG15_FILES.map((f) => [f.path, f.size, typeof f.lastModified === 'string' ? f.lastModified : formatLastModified(f.lastModified), f.checksum]),
  );
  assert.ok(buildManifest(m).equals(PG15_MANIFEST));
});

test('empty Files list is written as PostgreSQL writes it', () => {
  const b = buildManifest({ version: 1, files: [], walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }] });
  assert.ok(b.toString().startsWith('{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n],\n"WAL-Ranges": [\n'));
  assert.equal(parseManifest(b).files.size, 0);
});

test('bad checksum: one changed byte in the body, or in the checksum itself', () => {
  const body = Buffer.from(PG15_MANIFEST);
  body[body.indexOf('8192')] = '9'.charCodeAt(0);
  assert.throws(() => parseManifest(body), (e: unknown) => e instanceof ManifestError && /manifest checksum mismatch/.test(e.message));
  const sum = Buffer.from(PG15_MANIFEST);
  const at = sum.lastIndexOf('"}') - 1;
  sum[at] = sum[at] === 0x30 ? 0x31 : 0x30;
  assert.throws(() => parseManifest(sum), /manifest checksum mismatch/);
});

test('no final newline, or a checksum that is not 64 hex digits', () => {
  assert.throws(() => parseManifest(PG15_MANIFEST.subarray(0, -1)), /last line not newline-terminated/);
  const short = Buffer.from(`${PG15_BODY}"Manifest-Checksum": "abc"}\n`);
  assert.throws(() => parseManifest(short), /invalid manifest checksum "abc"/);
});

test('every truncation is a ManifestError, never a success or another error type', () => {
  for (let n = 0; n < PG17_MANIFEST.length; n++) {
    assert.throws(() => parseManifest(PG17_MANIFEST.subarray(0, n)), ManifestError, `truncated at ${n}`);
  }
  assert.throws(() => parseManifest(PG17_MANIFEST.subarray(0, 100)), /backup_manifest: not valid JSON/);
});

test('versions: only 1 and 2, and the version must come first', () => {
  assert.throws(() => parseManifest(seal(PG15_BODY.replace('Version": 1', 'Version": 3'))), /unexpected manifest version 3/);
  assert.throws(() => parseManifest(seal('{ "Files": [],\n"PostgreSQL-Backup-Manifest-Version": 1,\n')), /expected version indicator/);
  assert.throws(() => buildManifest({ ...PG15_INPUT, version: 2 }), /System-Identifier/);
});

test('structure errors name what is wrong', () => {
  const entry = (e: string) => seal(`{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${e}\n],\n"WAL-Ranges": [\n],\n`);
  assert.throws(() => parseManifest(entry('{ "Path": "a", "Size": 1 },\n{ "Path": "a", "Size": 1 }')), /duplicate path name "a"/);
  assert.throws(() => parseManifest(entry('{ "Path": "a", "Size": 1, "Colour": "red" }')), /unexpected file field "Colour"/);
  assert.throws(() => parseManifest(entry('{ "Path": "a", "Size": 1, "Checksum": "00" }')), /checksum without algorithm for "a"/);
  assert.throws(() => parseManifest(entry('{ "Path": "a", "Encoded-Path": "61", "Size": 1 }')), /both path name and encoded path name/);
  assert.throws(() => parseManifest(entry('{ "Path": "a", "Size": 1, "Checksum-Algorithm": "MD5", "Checksum": "00" }')), /unrecognized checksum algorithm "MD5"/);
  assert.throws(() => parseManifest(entry('{ "Path": "a" }')), /missing size for "a"/);
  assert.throws(() => parseManifest(entry('{ "Encoded-Path": "6", "Size": 1 }')), /could not decode file name/);
  assert.throws(() => parseManifest(Buffer.concat([Buffer.from('{ "x": "'), Buffer.from([0xff]), Buffer.from('" }\n\n')])), /not valid UTF-8/);
  // PostgreSQL reads numbers from the token text, so a quoted size is accepted, and algorithms are case-insensitive.
  const lenient = parseManifest(entry('{ "Path": "a", "Size": "12", "Checksum-Algorithm": "crc32c", "Checksum": "AABBCCDD" }'));
  assert.deepEqual(lenient.files.get('a'), { path: 'a', size: 12, lastModified: '', checksumAlgorithm: 'CRC32C', checksum: 'aabbccdd' });
});

test('Encoded-Path: raw bytes that are not UTF-8 are hex-encoded, decoded back, and round-trip', () => {
  const raw = Buffer.from([0x62, 0x61, 0x73, 0x65, 0x2f, 0x66, 0xe9, 0x65]); // "base/f\xe9e": Latin-1, not UTF-8
  const b = buildManifest({ version: 1, files: [{ path: raw, size: 0, lastModified: '2025-03-01 10:00:00 GMT' }], walRanges: [] });
  assert.match(b.toString(), /\n\{ "Encoded-Path": "626173652f66e965", "Size": 0, "Last-Modified": "2025-03-01 10:00:00 GMT" \}\n/);
  const m = parseManifest(b);
  const [f] = m.files.values();
  assert.deepEqual(f.rawPath, raw);
  // Keyed losslessly, as the tar parser names the member (src/codec/path-bytes.ts).
  assert.equal(f.path, 'base/f\udce9e');
  assert.ok(buildManifest(m).equals(b));
  // The same path as a pgbb path string (what a member event carries) writes the same line.
  const fromString = buildManifest({ version: 1, files: [{ path: 'base/f\udce9e', size: 0, lastModified: '2025-03-01 10:00:00 GMT' }], walRanges: [] });
  assert.ok(fromString.equals(b));
  // A valid UTF-8 Buffer or string is a plain Path, its bytes unescaped; forceEncode encodes everything.
  const utf8 = buildManifest({ version: 1, files: [{ path: Buffer.from('base/é'), size: 0, lastModified: 'x' }, { path: 'base/ü', size: 0, lastModified: 'x' }], walRanges: [] });
  assert.ok(utf8.includes(Buffer.from('{ "Path": "base/é", ')));
  assert.ok(utf8.includes(Buffer.from('{ "Path": "base/ü", ')));
  const forced = buildManifest({ version: 1, forceEncode: true, files: [{ path: 'ab', size: 0, lastModified: 'x' }], walRanges: [] });
  assert.ok(forced.includes(Buffer.from('{ "Encoded-Path": "6162", ')));
  assert.equal(parseManifest(forced).files.get('ab')?.rawPath?.toString(), 'ab');
});

test('escape_json: the short escapes, \\u00xx for other controls, DEL and non-ASCII as they are', () => {
  assert.equal(escapeJson('a"b\\c\nd\te\rf\bg\fh\x01i\x1fj\x7fk€'), '"a\\"b\\\\c\\nd\\te\\rf\\bg\\fh\\u0001i\\u001fj\x7fk€"');
  const path = 'odd/"quoted"\\back\nline\x01';
  const b = buildManifest({ version: 1, files: [{ path, size: 1, lastModified: 'x' }], walRanges: [] });
  assert.ok(b.includes(Buffer.from('{ "Path": "odd/\\"quoted\\"\\\\back\\nline\\u0001", ')));
  assert.ok(parseManifest(b).files.has(path));
});

test('CRC32C is written in PostgreSQL byte order', () => {
  assert.equal(crc32c.calculate('123456789'), 0xe3069283);
  assert.equal(crc32cHex(0xe3069283), '839206e3');
  assert.equal(crc32cHex(0), '00000000');
  const d = new FileDigest('CRC32C');
  d.update(Buffer.from('123456789'));
  assert.equal(d.digest(), '839206e3');
  assert.equal(new FileDigest('CRC32C').digest(), '00000000', 'empty file');
});

test('FileDigest gives the same result however the bytes are split', () => {
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff));
  for (const alg of ['CRC32C', 'SHA256', 'SHA512'] as const) {
    const whole = new FileDigest(alg);
    whole.update(data);
    const expected = whole.digest();
    for (let cut = 0; cut <= data.length; cut += 13) {
      const d = new FileDigest(alg);
      d.update(data.subarray(0, cut));
      d.update(data.subarray(cut));
      assert.equal(d.digest(), expected, `${alg} split at ${cut}`);
      assert.equal(d.size, data.length);
    }
  }
  const sha = new FileDigest('SHA224');
  sha.update(data);
  assert.equal(sha.digest(), createHash('sha224').update(data).digest('hex'));
  assert.equal(new FileDigest('NONE').digest(), undefined);
});

test('FileDigest continued with pieces\' own CRC32Cs equals the digest over their bytes', () => {
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff));
  const whole = new FileDigest('CRC32C');
  whole.update(data);
  for (let cut = 0; cut <= data.length; cut += 13) {
    const d = new FileDigest('CRC32C');
    for (const p of [data.subarray(0, cut), data.subarray(cut)]) d.update(p, crc32c.calculate(p, 0) >>> 0);
    assert.equal(d.digest(), whole.digest(), `split at ${cut}`);
  }
  // The given CRC is what counts: a wrong one gives another digest (it is not computed again).
  const d = new FileDigest('CRC32C');
  d.update(data, (crc32c.calculate(data, 0) ^ 1) >>> 0);
  assert.notEqual(d.digest(), whole.digest());
});

test('Last-Modified: UTC, whole seconds, GMT', () => {
  assert.equal(formatLastModified(new Date(Date.UTC(2026, 10, 21, 19, 44, 40, 999))), '2026-11-21 19:44:40 GMT');
  assert.equal(formatLastModified(new Date(Date.UTC(2001, 0, 2, 3, 4, 5))), '2001-01-02 03:04:05 GMT');
});

test('which members are listed, and under which path', () => {
  assert.equal(manifestPathOf('base', 'base', 'global/pg_control'), 'global/pg_control');
  assert.equal(manifestPathOf('base', 'base', 'pg_wal/000000010000000000000002'), null, 'WAL segment');
  assert.equal(manifestPathOf('base', 'base', 'pg_wal/00000002.history'), 'pg_wal/00000002.history');
  assert.equal(manifestPathOf('base', 'base', 'pg_wal/archive_status/000000010000000000000002.done'), 'pg_wal/archive_status/000000010000000000000002.done');
  assert.equal(manifestPathOf('tablespace', '16384', 'PG_15_202209061/5/16393'), 'pg_tblspc/16384/PG_15_202209061/5/16393');
  assert.equal(manifestPathOf('wal', 'pg_wal', '000000010000000000000002'), null);
  const t = new FileTracker('CRC32C');
  assert.equal(t.entry('pg_tblspc/16384', 'symlink', new Date()), null);
  assert.equal(t.entry('base', 'directory', new Date()), null);
  t.entry('a', 'file', new Date(0));
  t.data({ type: 'data', offset: 0, chunk: Buffer.from('1234') });
  assert.throws(() => t.data({ type: 'data', offset: 5, chunk: Buffer.from('x') }), /data for "a" at offset 5, expected 4/);
});

test('WAL-Ranges: one timeline, or several from the end timeline history, newest first', () => {
  assert.deepEqual(walRangesFor('0/2000028', 1, '0/2000100', 1), [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }]);
  const history = '1\t0/3000000\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n';
  assert.deepEqual(walRangesFor('0/4000028', 2, '0/6000100', 3, history), [
    { timeline: 3, startLsn: '0/5000000', endLsn: '0/6000100' },
    { timeline: 2, startLsn: '0/4000028', endLsn: '0/5000000' },
  ]);
  assert.deepEqual(walRangesFor('0/2000028', 1, '0/6000100', 3, history), [
    { timeline: 3, startLsn: '0/5000000', endLsn: '0/6000100' },
    { timeline: 2, startLsn: '0/3000000', endLsn: '0/5000000' },
    { timeline: 1, startLsn: '0/2000028', endLsn: '0/3000000' },
  ]);
  assert.throws(() => walRangesFor('0/4000028', 2, '0/6000100', 3), /history file "pg_wal\/00000003\.history" was not seen/);
  assert.throws(() => walRangesFor('0/4000028', 5, '0/6000100', 3, history), /start timeline 5 not found in history of timeline 3/);
});

// ---------------------------------------------------------------- fuzz regressions

/** A manifest with `files` as the Files lines (raw JSON text), checksum made right. */
function manifestWithLines(lines: string[]): Buffer {
  const body = Buffer.from(`{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${lines.join(',\n')}\n],\n"WAL-Ranges": [\n],\n`);
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([body, Buffer.from(`"Manifest-Checksum": "${sum}"}\n`)]);
}

test('a deeply nested value is a ManifestError, not a stack overflow (fuzz regression)', () => {
  // Messages used String(value): Array.prototype.toString recursed 50,000 levels deep.
  const deep = '['.repeat(50000) + ']'.repeat(50000);
  for (const line of [
    `{ "Encoded-Path": ${deep}, "Size": 0 }`,
    `{ "Path": "a", "Size": 0, "Checksum-Algorithm": ${deep} }`,
    `{ "Path": "a", "Size": 0, "Checksum-Algorithm": "CRC32C", "Checksum": ${deep} }`,
  ]) {
    assert.throws(() => parseManifest(manifestWithLines([line])), (e: Error) => e instanceof ManifestError && /an array/.test(e.message));
  }
});

test('error messages are one line, with values cut at 100 characters (fuzz regression)', () => {
  const long = 'x'.repeat(5000);
  const fixtures: Array<[string, Buffer]> = [
    ['a 5000-character algorithm', manifestWithLines([`{ "Path": "a", "Size": 0, "Checksum-Algorithm": "${long}" }`])],
    ['a key with a newline', manifestWithLines([`{ "Path": "a", "Si\\nze": 0 }`])],
    ['a path with a newline', manifestWithLines([`{ "Path": "a\\nb", "Size": 0 }`, `{ "Path": "a\\nb", "Size": 0 }`])],
    // V8 quotes the text around a JSON syntax error, newlines included.
    ['a syntax error near a newline', manifestWithLines([`{ "Path": "a", "Size": 0 }\n}`])],
  ];
  for (const [name, m] of fixtures) {
    assert.throws(() => parseManifest(m), (e: Error) => {
      assert.ok(e instanceof ManifestError, name);
      assert.doesNotMatch(e.message, /\n/, name);
      assert.ok(e.message.length < 400, `${name}: ${e.message.length} characters`);
      return true;
    });
  }
});

test('ManifestWriter: a large manifest comes in pieces of at most pieceSize, which join to what buildManifest writes', async () => {
  const { ManifestWriter } = await import('../../../src/codec/manifest-writer');
  const files = Array.from({ length: 3000 }, (_, i) => ({ path: `base/5/${i}`, size: i, lastModified: '2025-03-01 10:00:00 GMT', checksumAlgorithm: 'CRC32C' as const, checksum: '0000000a' }));
  const walRanges = [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }];
  const w = new ManifestWriter({ version: 1, pieceSize: 16 * 1024 });
  for (const f of files) w.file(f);
  const pieces = w.finish(walRanges);
  assert.ok(pieces.length > 10, `${pieces.length} pieces`);
  for (const p of pieces) assert.ok(p.length <= 16 * 1024 && p.length > 0);
  const whole = Buffer.concat(pieces);
  assert.ok(whole.equals(buildManifest({ version: 1, files, walRanges })));
  assert.equal(parseManifest(whole).files.size, 3000);
});
