/**
 * The CRC32C of a data event's bytes, computed once for every stage that
 * wants it (pure; no streams).
 *
 *   dataCrc(ev)   CRC32C of ev.chunk: computed by the first stage that asks,
 *                 remembered for the later ones
 *
 * Why: a plain backup's manifest check (src/manifest/file-tracker.ts) and
 * its chunk map (src/codec/chunkmap/chunk-hasher.ts) used to checksum every
 * byte each; now each continues its own running CRC with this one
 * (crc32cCombine: a few table lookups per event instead of a pass over the
 * bytes).
 *
 * What it is remembered against: the event object and, inside it, the very
 * Buffer it carries. A stage that passes other bytes makes a new event (or
 * puts another Buffer in it), and the CRC is computed afresh for those: a
 * spread `{ ...ev, chunk }` or a subarray never inherits it. What cannot be
 * caught is a stage writing into a chunk's bytes in place after a CRC was
 * taken; no stage may (src/events.ts says so of DataEvent). Nothing is held
 * past the event: the entry goes when the event is collected.
 */
// calculate(buf, crc) continues a running CRC (types: src/types/fast-crc32c.d.ts).
import { calculate as crc32c } from 'fast-crc32c';
import type { DataEvent } from '../events';

const known = new WeakMap<DataEvent, { chunk: Buffer; crc: number }>();

export function dataCrc(ev: DataEvent): number {
  const k = known.get(ev);
  if (k !== undefined && k.chunk === ev.chunk) return k.crc;
  const crc = crc32c(ev.chunk, 0) >>> 0;
  known.set(ev, { chunk: ev.chunk, crc });
  return crc;
}
