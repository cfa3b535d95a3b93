/**
 * Fuzz targets for the replication protocol codecs (src/codec/protocol/*,
 * src/codec/protocol/streaming-messages.ts):
 *   stream   a realistic BASE_BACKUP response and a START_REPLICATION
 *            stream, mutated and cut at random points, through
 *            BackendParser — which must frame exactly what a reference
 *            framing of the whole input finds (../support/backend-frames.ts)
 *            — then each message through the decoder the connection would
 *            use (decodeCopyData, parseRowDescription, parseDataRow,
 *            parseNotice, decodeStreamingMessage). Random bytes too.
 *   framing  random message sequences (any type byte, bodies from empty to
 *            beyond the parser's first buffer), cut anywhere: the same
 *            sequence comes out; a corrupt length is a ProtocolError after
 *            exactly the messages before it; a huge declared length that
 *            never arrives allocates about what did arrive, not what it says.
 */
import assert from 'node:assert/strict';
import { parseDataRow, parseNotice, parseRowDescription } from '../../../src/codec/protocol/backend-parser';
import { decodeCopyData } from '../../../src/codec/protocol/base-backup';
import { decodeStreamingMessage } from '../../../src/codec/protocol/streaming-messages';
import { encodeFrame, frameWithParser, MAX_BODY, referenceFrames } from '../support/backend-frames';
import { mutate, Rng } from '../support/random';
import { MiB, type FuzzTarget } from '../support/target';

const msg = (code: string, body: Buffer | string) => encodeFrame(code.charCodeAt(0), typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
const cstr = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(''));

function rowDescription(cols: Array<[string, number]>): Buffer {
  const parts = [Buffer.from([0, cols.length])];
  for (const [name, type] of cols) {
    const attrs = Buffer.alloc(18);
    attrs.writeUInt32BE(type, 6);
    attrs.writeInt16BE(-1, 10);
    attrs.writeInt32BE(-1, 12);
    parts.push(cstr(name), attrs);
  }
  return msg('T', Buffer.concat(parts));
}

function dataRow(values: Array<string | null>): Buffer {
  const parts = [Buffer.from([0, values.length])];
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(v === null ? -1 : Buffer.byteLength(v));
    parts.push(len);
    if (v !== null) parts.push(Buffer.from(v));
  }
  return msg('D', Buffer.concat(parts));
}

function copyData(type: string, body: Buffer): Buffer {
  return msg('d', Buffer.concat([Buffer.from(type), body]));
}

function progress(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return copyData('p', b);
}

/** What PostgreSQL 15 sends for BASE_BACKUP, shortened. */
function baseBackupResponse(): Buffer {
  const tar = Buffer.alloc(3000, 0x41);
  return Buffer.concat([
    rowDescription([['recptr', 25], ['tli', 20]]),
    dataRow(['0/2000028', '1']),
    msg('C', cstr('SELECT')),
    rowDescription([['spcoid', 26], ['spclocation', 25], ['size', 20]]),
    dataRow(['16385', '/srv/ts', null]),
    dataRow([null, null, '42']),
    msg('C', cstr('SELECT')),
    msg('H', Buffer.from([0, 0, 0])),
    copyData('n', cstr('16385.tar', '/srv/ts')),
    copyData('d', tar.subarray(0, 1024)),
    progress(1024n),
    msg('N', Buffer.concat([cstr('SWARNING', 'VWARNING', 'C01000', 'Mchecksum verification failed in file "./base/5/16390", block 5'), Buffer.from([0])])),
    copyData('n', cstr('base.tar', '')),
    copyData('d', tar),
    progress(4024n),
    copyData('m', Buffer.alloc(0)),
    copyData('d', Buffer.from('{ "PostgreSQL-Backup-Manifest-Version": 1,\n')),
    msg('c', Buffer.alloc(0)),
    rowDescription([['recptr', 25], ['tli', 20]]),
    dataRow(['0/2000100', '1']),
    msg('C', cstr('SELECT')),
    msg('E', Buffer.concat([cstr('SERROR', 'VERROR', 'CXX001', 'Mchecksum verification failure during base backup'), Buffer.from([0])])),
    msg('Z', 'I'),
  ]);
}

/** A START_REPLICATION stream: XLogData and keepalives. */
function streamingResponse(): Buffer {
  const w = Buffer.alloc(1 + 24 + 2000, 0x17);
  w[0] = 0x77;
  w.writeBigUInt64BE(0x2000000n, 1);
  w.writeBigUInt64BE(0x2000800n, 9);
  w.writeBigUInt64BE(7000000n, 17);
  const k = Buffer.alloc(18);
  k[0] = 0x6b;
  k.writeBigUInt64BE(0x2000800n, 1);
  k[17] = 1;
  return Buffer.concat([msg('W', Buffer.from([0, 0, 0])), msg('d', w), msg('d', k), msg('d', w), msg('c', Buffer.alloc(0)), msg('C', cstr('START_STREAMING'))]);
}

interface Ctx {
  seeds: Buffer[];
}

function decodeAll(rng: Rng, input: Buffer, streaming: boolean): number {
  const { frames } = frameWithParser(rng, input);
  for (const { code, body } of frames) {
    switch (String.fromCharCode(code)) {
      case 'd': {
        if (streaming) {
          const m = decodeStreamingMessage(body);
          assert.ok(m.kind === 'xlogdata' || m.kind === 'keepalive');
        } else {
          const m = decodeCopyData(body);
          if (m.kind === 'progress') assert.ok(Number.isFinite(m.done));
          if (m.kind === 'archive') assert.equal(typeof m.name, 'string');
        }
        break;
      }
      case 'T':
        for (const n of parseRowDescription(body)) assert.equal(typeof n, 'string');
        break;
      case 'D':
        parseDataRow(body);
        break;
      case 'N':
      case 'E':
        assert.equal(typeof parseNotice(body).message, 'string');
        break;
    }
  }
  return frames.length;
}

export const stream: FuzzTarget<Ctx> = {
  setup() {
    const seeds = [baseBackupResponse(), streamingResponse()];
    // The seeds themselves decode, whole: mutations start from valid streams.
    assert.deepEqual(seeds.map((seed, i) => decodeAll(new Rng(i), seed, i === 1)), [23, 6]);
    return { seeds };
  },
  // A message is at most 64 MiB; what its length field says must not be allocated before it arrives.
  limits: { arrayBuffers: 16 * MiB },
  run(rng, ctx) {
    const which = rng.int(ctx.seeds.length);
    const input = rng.chance(0.1) ? rng.bytes(rng.int(2048)) : mutate(rng, ctx.seeds[which]!);
    decodeAll(rng, input, which === 1);
  },
};

const BAD_LENGTHS = [0, 1, 2, 3, MAX_BODY + 5, 0x7fffffff, 0x80000000, 0xffffffff];
/** Declared lengths the parser must accept but not allocate before the bytes come. */
const HUGE_LENGTHS = [8 * MiB, 32 * MiB, MAX_BODY + 4];
/** The parser's first buffer for a split message (src/codec/protocol/backend-parser.ts); beyond it, it grows as bytes arrive. */
const FIRST_BUFFER = 256 * 1024;

/** Seeded noise, four bytes per step (Rng.bytes costs a call per byte; bodies here run to megabytes per case). */
function noise(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (rng.int(2 ** 32) | 1) >>> 0;
  for (let i = 0; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  for (let i = n & ~3; i < n; i++) b[i] = rng.int(256);
  return b;
}

function randomBody(rng: Rng): Buffer {
  const r = rng.int(100);
  if (r < 20) return Buffer.alloc(0);
  if (r < 70) return noise(rng, 1 + rng.int(64));
  if (r < 95) return noise(rng, rng.int(9000));
  if (r < 99) return noise(rng, rng.int(140000));
  return noise(rng, FIRST_BUFFER - 100 + rng.int(300000));
}

export const framing: FuzzTarget<null> = {
  limits: { arrayBuffers: 16 * MiB },
  run(rng) {
    const sent = Array.from({ length: 1 + rng.int(30) }, () => ({ code: rng.int(256), body: randomBody(rng) }));
    const encoded = sent.map((f) => encodeFrame(f.code, f.body));
    let input = Buffer.concat(encoded);
    const k = rng.int(sent.length);
    const at = encoded.slice(0, k).reduce((n, b) => n + b.length, 0);
    const mode = rng.int(8);
    if (mode === 0) {
      // A corrupt length at message k: the k messages before it, then a ProtocolError.
      input.writeUInt32BE(rng.pick(BAD_LENGTHS), at + 1);
      const ref = referenceFrames(input);
      assert.deepEqual([ref.frames.length, ref.invalidAt], [k, at]);
    } else if (mode === 1) {
      input = input.subarray(0, rng.int(input.length + 1));
    } else if (mode === 2) {
      // Message k declares a huge body, of which only a little ever comes (the
      // messages before it are dropped: split ones are copied, which would blur the bound).
      input.writeUInt32BE(rng.pick(HUGE_LENGTHS), at + 1);
      input = input.subarray(at, Math.min(input.length, at + 5 + rng.int(300000)));
    }
    // Byte at a time only for small inputs: a write per byte of a megabyte costs seconds.
    const sizes = input.length < 65536 ? [1, 7, 512, 4096, 65536] : [64, 511, 4096, 65536, 1 << 20];
    const { frames, grew } = frameWithParser(rng, input, sizes);
    if (mode === 2) {
      const arrived = input.length - 5;
      // Doubling from FIRST_BUFFER: the live buffer is < 2× what arrived, the ones outgrown as much again.
      const bound = FIRST_BUFFER + 4 * arrived + MiB;
      assert.ok(grew <= bound, `declared ${input.readUInt32BE(1)} bytes, ${arrived} arrived: Buffers grew by ${grew} (bound ${bound})`);
    }
    if (mode >= 3) {
      // Independently of the reference framing: exactly what was sent.
      assert.equal(frames.length, sent.length);
      frames.forEach((f, i) => assert.ok(f.code === sent[i]!.code && f.body.equals(sent[i]!.body), `message ${i}`));
    }
  },
};

/** One CopyData payload straight into each decoder: short, random, or a mutated real one. */
export const copyDataPayload: FuzzTarget<Ctx> = {
  setup: () => ({
    seeds: [cstr('n16385.tar', '/srv/ts'), cstr('nbase.tar', ''), Buffer.from('dxxxx'), progress(5n).subarray(5), Buffer.from('m'), streamingResponse().subarray(10, 40)],
  }),
  run(rng, ctx) {
    const input = rng.chance(0.3) ? rng.bytes(rng.int(40)) : mutate(rng, rng.pick(ctx.seeds), 2);
    if (rng.chance(0.5)) decodeCopyData(input);
    else decodeStreamingMessage(input);
  },
};
