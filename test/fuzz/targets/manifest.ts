/**
 * Fuzz target for parseManifest (src/codec/manifest.ts). Seeds come from
 * buildManifest (versions 1 and 2, Path and Encoded-Path, several checksum
 * algorithms, WAL ranges). Three kinds of input:
 *   - the bytes mutated (most fail the Manifest-Checksum, as they should);
 *   - the bytes before the checksum line mutated, then the checksum fixed, so
 *     the JSON and layout checks behind it are reached;
 *   - the JSON tree mutated (a value replaced by a huge or negative number, a
 *     string, null, an array, a deep nest; a key dropped or added), written
 *     back one file per line, checksum fixed.
 * Whatever parses must be well typed: files keyed by path, sizes safe
 * integers, LSNs in X/X form — and agree with its own text: the right
 * checksum, every file listed with its size. A file's size changed without
 * fixing the checksum must be a checksum mismatch. The streaming reader
 * (src/codec/manifest-reader.ts), fed the input cut at random points, must
 * agree with parseManifest and with the JSON.parse-based parser it replaced
 * (test/support/manifest-reference.ts): the same manifest, or the same
 * message (for JSON syntax errors, the same kind).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildManifest, ManifestReader, parseManifest, type Manifest, type ManifestFile } from '../../../src/codec/manifest';
import { parseManifestReference } from '../../support/manifest-reference';
import { ManifestError } from '../../../src/errors';
import { pathFromBytes } from '../../../src/codec/path-bytes';
import { chunked, mutate, type Rng } from '../support/random';
import type { FuzzTarget } from '../support/target';

interface Ctx {
  seeds: Buffer[];
}

const LM = '2024-05-06 07:08:09 GMT';

function setup(): Ctx {
  const files = [
    { path: 'backup_label', size: 227, lastModified: LM, checksumAlgorithm: 'CRC32C' as const, checksum: '0a1b2c3d' },
    { path: 'base/1/1259', size: 8192, lastModified: LM, checksumAlgorithm: 'CRC32C' as const, checksum: 'deadbeef' },
    { path: pathFromBytes(Buffer.from([0x62, 0xff, 0xfe, 0x78])), size: 3, lastModified: LM, checksumAlgorithm: 'CRC32C' as const, checksum: '00000000' },
    { path: 'pg_tblspc/16385/PG_15_202209061/1/16390', size: 0, lastModified: LM, checksumAlgorithm: 'CRC32C' as const, checksum: '00000000' },
    { path: 'odd "name"\\', size: 1, lastModified: LM },
  ];
  const walRanges = [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }];
  const seeds = [
      buildManifest({ version: 1, files, walRanges }),
      buildManifest({ version: 2, systemIdentifier: '7350000000000000001', files, walRanges }),
      buildManifest({
        version: 1,
        files: [{ path: 'a', size: 1, lastModified: LM, checksumAlgorithm: 'SHA256', checksum: 'ab'.repeat(32) }],
        walRanges: [{ timeline: 2, startLsn: '0/3000000', endLsn: '0/3000100' }, { timeline: 1, startLsn: '0/2000028', endLsn: '0/3000000' }],
        forceEncode: true,
      }),
  ];
  for (const seed of seeds) parseManifest(seed); // the seeds themselves parse
  return { seeds };
}

/** What a parser made of an input: the manifest as plain data, or its message. */
function outcome(parse: () => Manifest): { ok: unknown } | { error: string } {
  try {
    const m = parse();
    return { ok: { ...m, files: [...m.files.entries()] } };
  } catch (err) {
    assert.ok(err instanceof ManifestError, `not a ManifestError: ${String(err)}`);
    // V8 and the tokenizer word a syntax error each their own way.
    return { error: err.message.replace(/^(backup_manifest: not valid JSON) \(.*\)$/, '$1') };
  }
}

function readInPieces(rng: Rng, input: Buffer): Manifest {
  const files = new Map<string, ManifestFile>();
  const r = new ManifestReader({ onFile: (f) => void files.set(f.path, f) });
  for (const piece of chunked(rng, input)) r.write(piece);
  const { version, systemIdentifier, walRanges } = r.end();
  return { version, files, walRanges, ...(systemIdentifier === undefined ? {} : { systemIdentifier }) };
}

function agree(rng: Rng, input: Buffer): void {
  const reference = outcome(() => parseManifestReference(input));
  const whole = outcome(() => parseManifest(input));
  const pieces = outcome(() => readInPieces(rng, input));
  assert.deepEqual(pieces, whole, 'the same in pieces as whole');
  // Refused by design: a second Files or WAL-Ranges field (JSON.parse keeps the last).
  if ('error' in whole && /duplicate top-level field/.test(whole.error)) return;
  assert.deepEqual(whole, reference, 'the streaming reader agrees with the JSON.parse reader');
}

/** Replaces the Manifest-Checksum line with the right one for what precedes it. */
function withChecksum(body: Buffer): Buffer {
  const end = body.lastIndexOf('\n"Manifest-Checksum"');
  const head = end >= 0 ? body.subarray(0, end + 1) : body;
  const sum = createHash('sha256').update(head).digest('hex');
  return Buffer.concat([head, Buffer.from(`"Manifest-Checksum": "${sum}"}\n`)]);
}

const VALUES: unknown[] = [
  -1, 0, 1.5, 2 ** 53, 2 ** 64, 1e308, -1e308, '18446744073709551616', '', 'x', '-5', '0/0', 'FFFFFFFF/FFFFFFFF', 'zz', null, true, [], {}, [1, [2, [3]]],
  { Path: 'p' }, 'CRC32C', 'SHA512', 'md5', 'a'.repeat(5000),
];

function randomValue(rng: Rng, depth = 0): unknown {
  if (depth < 3 && rng.chance(0.1)) return rng.chance(0.5) ? [randomValue(rng, depth + 1)] : { [rng.pick(['Path', 'Size', 'x'])]: randomValue(rng, depth + 1) };
  // A deep nest (spliced in as text by serialize): nothing may blow the stack on it.
  if (rng.chance(0.03)) return `__DEEP_${1000 + rng.int(50000)}__`;
  return rng.pick(VALUES);
}

/** Mutates one place in the JSON tree. */
function mutateTree(rng: Rng, doc: Record<string, unknown>): void {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const list = (v: unknown) => (Array.isArray(v) ? v.filter(isObj) : []);
  const targets: Array<Record<string, unknown>> = [doc, ...list(doc.Files), ...list(doc['WAL-Ranges'])];
  const obj = rng.pick(targets);
  const keys = Object.keys(obj);
  const r = rng.int(10);
  if (r < 6 && keys.length) obj[rng.pick(keys)] = randomValue(rng);
  else if (r < 8 && keys.length) delete obj[rng.pick(keys)];
  else obj[rng.pick(['Path', 'Encoded-Path', 'Size', 'Checksum', 'Timeline', 'Files', 'Unknown', '__proto__', 'System-Identifier'])] = randomValue(rng);
}

/** Writes the tree back in the server's layout (version first, one file per line). */
function serialize(doc: Record<string, unknown>): Buffer {
  const files = doc.Files;
  const ranges = doc['WAL-Ranges'];
  const rest = Object.entries(doc).filter(([k]) => k !== 'Files' && k !== 'WAL-Ranges' && k !== 'Manifest-Checksum');
  let text = '{ ' + rest.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n') + (rest.length ? ',\n' : '');
  if (files !== undefined) text += `"Files": ${Array.isArray(files) ? `[\n${files.map((f) => JSON.stringify(f)).join(',\n')}\n]` : JSON.stringify(files)},\n`;
  if (ranges !== undefined) text += `"WAL-Ranges": ${JSON.stringify(ranges)},\n`;
  text = text.replace(/"__DEEP_(\d+)__"/g, (_, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
  return withChecksum(Buffer.from(text + '"Manifest-Checksum": ""}\n'));
}

/**
 * What an accepted manifest must agree with, read here from its text with
 * JSON.parse rather than by parseManifest: the checksum (SHA-256 of
 * everything through the newline before the last line, as PostgreSQL's
 * parse_manifest.c computes it) is right, and every file listed is there
 * with its size.
 */
function checkAgainstText(input: Buffer, m: ReturnType<typeof parseManifest>): void {
  const doc = JSON.parse(input.toString('utf8')) as { Files?: Array<Record<string, unknown>>; 'Manifest-Checksum'?: string };
  const penultimate = input.lastIndexOf(0x0a, input.length - 2);
  const sum = createHash('sha256').update(input.subarray(0, penultimate + 1)).digest('hex');
  assert.equal(String(doc['Manifest-Checksum']).toLowerCase(), sum, 'an accepted manifest has the right checksum');
  const listed = doc.Files ?? [];
  assert.equal(m.files.size, listed.length, 'every file listed, once');
  for (const f of listed) {
    const path = typeof f.Path === 'string' ? f.Path : pathFromBytes(Buffer.from(String(f['Encoded-Path']), 'hex'));
    assert.equal(m.files.get(path)?.size, f.Size, `"${path}" with its size`);
  }
}

export const parse: FuzzTarget<Ctx> = {
  setup,
  run(rng, ctx) {
    const seed = rng.pick(ctx.seeds);
    let input: Buffer;
    const mode = rng.int(10);
    if (rng.chance(0.1)) {
      // One file's size changed and the checksum left as it was: only the checksum can tell, and must.
      const sizes = [...seed.toString('latin1').matchAll(/"Size": (\d+)/g)];
      const at = rng.pick(sizes);
      const text = seed.toString('latin1');
      const changed = Buffer.from(text.slice(0, at.index) + `"Size": ${Number(at[1]) + 1 + rng.int(9)}` + text.slice(at.index! + at[0].length), 'latin1');
      agree(rng, changed);
      let err: unknown = null;
      try {
        parseManifest(changed);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof ManifestError && /: manifest checksum mismatch: /.test(err.message), `a size changed, checksum not: ${String(err)}`);
      throw err; // counted as rejected
    }
    if (mode < 3) input = rng.chance(0.1) ? rng.bytes(rng.int(400)) : mutate(rng, seed);
    else if (mode < 6) input = withChecksum(mutate(rng, seed.subarray(0, seed.lastIndexOf('\n"Manifest-Checksum"') + 1)));
    else {
      const doc = JSON.parse(seed.toString('utf8')) as Record<string, unknown>;
      for (let i = 0, n = 1 + rng.int(3); i < n; i++) mutateTree(rng, doc);
      input = serialize(doc);
    }
    agree(rng, input);
    const m = parseManifest(input);
    assert.ok(m.version === 1 || m.version === 2);
    for (const [key, f] of m.files) {
      assert.equal(key, f.path);
      assert.ok(Number.isSafeInteger(f.size) && f.size >= 0);
      assert.equal(typeof f.lastModified, 'string');
    }
    for (const r of m.walRanges) {
      assert.ok(Number.isSafeInteger(r.timeline));
      assert.match(r.startLsn, /^[0-9A-Fa-f]+\/[0-9A-Fa-f]+$/);
    }
    if (m.systemIdentifier !== undefined) assert.match(m.systemIdentifier, /^\d+$/);
    checkAgainstText(input, m);
  },
};
