/**
 * Fuzz targets for the replication protocol codecs (src/protocol/*,
 * src/wal/streaming-messages.ts): a realistic BASE_BACKUP response and a
 * START_REPLICATION stream, mutated and cut at random points, through
 * BackendParser, then each message through the decoder the connection would
 * use (decodeCopyData, parseRowDescription, parseDataRow, parseNotice,
 * decodeStreamingMessage). Random bytes too.
 */
import assert from 'node:assert/strict';
import { BackendParser, frontendMessage, parseDataRow, parseNotice, parseRowDescription } from '../../../src/protocol/backend-parser';
import { decodeCopyData } from '../../../src/protocol/base-backup';
import { decodeStreamingMessage } from '../../../src/wal/streaming-messages';
import { chunked, mutate, Rng } from '../support/random';
import { MiB, type FuzzTarget } from '../support/target';

const msg = (code: string, body: Buffer | string) => frontendMessage(code, typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
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

function decodeAll(rng: Rng, input: Buffer, streaming: boolean): void {
  let messages = 0;
  const parser = new BackendParser((code, body) => {
    messages++;
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
  });
  for (const piece of chunked(rng, input)) parser.write(piece);
  assert.ok(messages >= 0);
}

export const stream: FuzzTarget<Ctx> = {
  setup() {
    const seeds = [baseBackupResponse(), streamingResponse()];
    // The seeds themselves decode: mutations start from valid streams.
    seeds.forEach((seed, i) => decodeAll(new Rng(i), seed, i === 1));
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
