/**
 * Two kinds of stream meet in a pgbb pipeline: the member stream (object
 * mode, src/events.ts) and byte streams (tar, zstd). tarPack() turns the one
 * into the other, tarUnpack() back. A stage handed the wrong kind fails with
 * a UsageError naming itself and the stage before it, instead of Node's
 * ERR_INVALID_ARG_TYPE (or, worse, bytes misread as events).
 *
 * The stage before is learnt from the Writable 'pipe' event (stream.pipeline
 * and .pipe() emit it): its `stageName` when it is a pgbb stage, else its
 * class name. The TypeScript side: each factory returns a type that says what
 * it takes and gives (`takes`, `gives`), for readers and editors; Node's
 * pipeline() typings cannot check the pairing, the runtime check does.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { UsageError } from '../src/errors';

export type StreamKind = 'members' | 'bytes';

/** A pgbb stage between two kinds of stream. */
export interface Stage<Takes extends StreamKind, Gives extends StreamKind> extends Duplex {
  readonly takes: Takes;
  readonly gives: Gives;
  /** How messages name it, e.g. "zstdCompress()". */
  readonly stageName: string;
}

/** Remembers which stream is piped into `stage`, for messages. */
export function trackUpstream(stage: Writable): () => string {
  let upstream: string | null = null;
  stage.on('pipe', (src: Readable) => {
    upstream = describe(src);
  });
  return () => upstream ?? 'the stream before it';
}

function describe(src: Readable): string {
  const named = (src as Partial<Stage<StreamKind, StreamKind>>).stageName;
  if (typeof named === 'string') return named;
  const cls = src.constructor?.name;
  return cls && cls !== 'Object' ? cls : 'the stream before it';
}

export function isBytes(chunk: unknown): chunk is Buffer | Uint8Array | string {
  return chunk instanceof Uint8Array || typeof chunk === 'string';
}

/** A member event, by its shape. */
export function looksLikeEvent(chunk: unknown): boolean {
  return typeof chunk === 'object' && chunk !== null && typeof (chunk as { type?: unknown }).type === 'string';
}

/** For a byte stage handed something else (member events, most likely). */
export function notBytes(stage: string, upstream: string, chunk: unknown, hint = 'put tarPack() before it'): UsageError {
  if (looksLikeEvent(chunk)) {
    return new UsageError(`${stage} was given member events from ${upstream}; it takes bytes: ${hint}`);
  }
  return new UsageError(`${stage} was given a ${chunk === null ? 'null' : typeof chunk} chunk from ${upstream}; it takes bytes (Buffers)`);
}

/** For tarPack() handed bytes (or anything else that is not a member event). */
export function notMembers(stage: string, upstream: string, chunk: unknown): UsageError {
  if (isBytes(chunk)) {
    return new UsageError(`${stage} takes member events, it was given bytes from ${upstream} (tar bytes? put tarUnpack() before it)`);
  }
  return new UsageError(`${stage} takes member events (src/events.ts), it was given a ${chunk === null ? 'null' : typeof chunk} from ${upstream}`);
}

/**
 * Guards a byte-mode Writable's write(): anything but bytes destroys it with
 * notBytes() (Node would throw ERR_INVALID_ARG_TYPE out of write()).
 */
export function guardBytes(stage: Writable & { readonly stageName: string }, hint?: string): void {
  const upstream = trackUpstream(stage);
  const write = stage.write;
  stage.write = function (this: Writable, chunk: unknown, ...rest: unknown[]): boolean {
    if (!isBytes(chunk)) {
      this.destroy(notBytes(stage.stageName, upstream(), chunk, hint));
      return false;
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Writable['write'];
}
