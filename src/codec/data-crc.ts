/**
 * The CRC32C of a data event's bytes, computed once for every stage that
 * wants it (pure; no streams).
 *
 *   dataCrc(ev)   CRC32C of ev.chunk: computed by the first stage that asks,
 *                 remembered for the later ones
 *   knownCrc(ev)  the remembered one, or undefined (nothing computed)
 *
 * Why: a plain backup's manifest check (src/manifest/file-tracker.ts) and
 * its chunk map (src/codec/chunkmap/chunk-hasher.ts) used to checksum every
 * byte each; now each continues its own running CRC with this one
 * (crc32cCombine: a few table lookups per event instead of a pass over the
 * bytes).
 *
 * What it is remembered against: the event object and, inside it, the very
 * Buffer it carries (two symbol-keyed properties on the event; a WeakMap
 * was measured slower and, its entries dying with young events, larger).
 * A stage that passes other bytes makes a new event or puts another Buffer
 * in it, and the CRC is computed afresh for those: a spread `{ ...ev, chunk }`
 * copies the properties but not the match, a subarray is another Buffer.
 * A reused Buffer never carries a stale CRC either: it is the event, made
 * anew for every piece, that holds it. What cannot be caught is a stage
 * writing into a chunk's bytes in place after a CRC was taken; no stage may
 * (src/events.ts says so of DataEvent).
 */
// crc32c(buf, crc) continues a running CRC (which library, and why it is chosen on the machine: src/codec/crc32c.ts).
import { crc32c } from './crc32c';
import type { DataEvent } from '../events';

/** Kept on the event itself, with the Buffer it was taken of (spread into a new event with another chunk, it no longer matches). */
const CRC = Symbol('pgbb.crc32c');
const OF = Symbol('pgbb.crc32c.of');
type Tagged = DataEvent & { [CRC]?: number; [OF]?: Buffer };

/** The CRC an earlier stage computed for this event's chunk, if any: lets a stage that would not share its own use one for free. */
export function knownCrc(ev: DataEvent): number | undefined {
  const t = ev as Tagged;
  return t[OF] === ev.chunk ? t[CRC] : undefined;
}

export function dataCrc(ev: DataEvent): number {
  const t = ev as Tagged;
  if (t[OF] === ev.chunk) return t[CRC]!;
  const crc = crc32c(ev.chunk, 0) >>> 0;
  t[CRC] = crc;
  t[OF] = ev.chunk;
  return crc;
}
