/**
 * A reference for the framing of PostgreSQL backend messages, written here
 * rather than taken from pgbb, so the protocol fuzz target checks
 * src/codec/protocol/backend-parser.ts against an independent reading of the
 * protocol (PostgreSQL docs, "Message Formats": a type byte, then an int32
 * length that counts itself but not the type byte, then the body).
 *
 *   encodeFrame(code, body)   one message's bytes
 *   referenceFrames(input)    the whole input framed at once: the messages up
 *                             to the first invalid length (and where that
 *                             is), and how many bytes of an incomplete last
 *                             message are left over
 *   frameWithParser(rng, input)  the same input cut at random points through
 *                             BackendParser, asserting it delivers exactly
 *                             the reference's messages (none lost, none
 *                             duplicated, same types and bytes, still intact
 *                             after every later write) and throws a
 *                             ProtocolError exactly where the reference
 *                             finds an invalid length; also reports how
 *                             much Buffer memory the parser took meanwhile
 */
import assert from 'node:assert/strict';
import { BackendParser } from '../../../src/codec/protocol/backend-parser';
import { ProtocolError } from '../../../src/errors';
import { chunked, type Rng } from './random';

/** The largest body pgbb accepts (README: a message is at most 64 MiB); lengths beyond, or under 4, are invalid. */
export const MAX_BODY = 64 * 1024 * 1024;

export interface Frame {
  code: number;
  body: Buffer;
}

export function encodeFrame(code: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = code;
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export interface Reference {
  frames: Frame[];
  /** Offset of the header whose length is invalid, or null. */
  invalidAt: number | null;
  /** Bytes after the last whole message when the input stops inside one (0 when it ends on a boundary). */
  partial: number;
}

export function referenceFrames(input: Buffer): Reference {
  const frames: Frame[] = [];
  let pos = 0;
  while (input.length - pos >= 5) {
    const length = input.readUInt32BE(pos + 1);
    if (length < 4 || length - 4 > MAX_BODY) return { frames, invalidAt: pos, partial: 0 };
    if (input.length - pos - 1 < length) break;
    frames.push({ code: input[pos]!, body: Buffer.from(input.subarray(pos + 5, pos + 1 + length)) });
    pos += 1 + length;
  }
  return { frames, invalidAt: null, partial: input.length - pos };
}

const describe = (fs: Frame[]) => fs.map((f) => `${f.code}:${f.body.length}`).join(' ');

/**
 * Runs `input`, cut at random points, through a BackendParser and checks it
 * against referenceFrames. Returns the messages; rethrows the parser's
 * ProtocolError (after checking it) so a fuzz case counts it as a rejection.
 * `grew`: growth of process.memoryUsage().arrayBuffers across the writes.
 */
export function frameWithParser(rng: Rng, input: Buffer, sizes?: readonly number[]): { frames: Frame[]; grew: number } {
  const want = referenceFrames(input);
  const pieces = chunked(rng, input, sizes);
  const got: Frame[] = [];
  const before = process.memoryUsage().arrayBuffers;
  const parser = new BackendParser((code, body) => void got.push({ code, body }));
  let error: unknown = null;
  try {
    for (const piece of pieces) parser.write(piece);
  } catch (err) {
    error = err;
  }
  // Measured while the parser still holds what it allocated.
  const grew = process.memoryUsage().arrayBuffers - before;
  // Compared after the last write: a body handed out earlier must not have been overwritten since.
  assert.equal(describe(got), describe(want.frames), 'the same messages (type:length), none lost or duplicated');
  got.forEach((f, i) => assert.ok(f.body.equals(want.frames[i]!.body), `message ${i} (type ${f.code}) has the bytes that were sent`));
  if (want.invalidAt !== null) {
    assert.ok(error instanceof ProtocolError, `an invalid length at offset ${want.invalidAt} is a ProtocolError, got ${String(error)}`);
    assert.match(error.message, /^invalid message length \d+ for message type \S+ from server$/);
    throw error;
  }
  if (error !== null) throw new assert.AssertionError({ message: `the parser threw on a validly framed input: ${String(error)}` });
  assert.equal(parser.idle, want.partial === 0, `idle exactly when the input ends on a message boundary (${want.partial} bytes left)`);
  return { frames: got, grew };
}
