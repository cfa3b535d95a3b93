/**
 * Recycled read memory for the replication connection (bench/README.md,
 * "socket-read.ts"): Node's socket allocates a fresh 64 KiB Buffer per read,
 * and those wait for the garbage collector long after they are written out —
 * 35–45 MB of pgbb's peak RSS and a third of the read path's CPU. Here the
 * socket reads into the free tail of a 256 KiB slab (net.Socket `onread`);
 * the parser, decoder and tar parser hand out subarrays of it as today.
 *
 * Who may reuse a slab: the reader while it fills it, then nobody until
 * every byte handed out of it is given back. The accounting is by bytes, so
 * that a stage may cut a view into pieces (each piece given back on its own
 * adds up to the whole):
 *   - the source `retain`s each data view as it pushes it (base-backup-reader);
 *   - the stage that finally consumes the bytes (the write that took them,
 *     the compressor that copied them) `release`s exactly those bytes once;
 *   - a stage that sends one view to two consumers retains it once more.
 * A view nobody releases only keeps its slab from coming back: the slab is
 * then garbage like any Buffer, and the reader takes a fresh one. So a
 * stage that forgets costs what reading cost before; only releasing too much
 * or too early could do harm, which is why release is called in few places.
 *
 * Buffers that are not slab views pass through retain/release untouched.
 */

/** Each slab's size; a read gets the slab's free tail, at least MIN_READ. */
export const SLAB_SIZE = 256 * 1024;
const MIN_READ = 64 * 1024;
/** Free slabs kept for reuse (8 MiB); beyond, a given-back slab is left to the collector. */
const KEEP_FREE = 32;

interface SlabState {
  /** Bytes handed out of the slab and not given back. */
  held: number;
  /** The reader still reads into it. */
  filling: boolean;
}

const states = new WeakMap<ArrayBuffer | SharedArrayBuffer, SlabState>();
const free: ArrayBuffer[] = [];

/** Counts bytes of a slab as held by the caller's consumer (no-op for other buffers). */
export function retain(view: Uint8Array): void {
  const s = states.get(view.buffer);
  if (s !== undefined) s.held += view.byteLength;
}

/** Gives back bytes retained before; the slab is reused once all of it is back (no-op for other buffers). */
export function release(view: Uint8Array): void {
  const s = states.get(view.buffer);
  if (s === undefined) return;
  s.held -= view.byteLength;
  if (s.held > 0 || s.filling) return;
  if (s.held < 0) {
    // More given back than handed out: a bug somewhere; never reuse this slab.
    states.delete(view.buffer);
    return;
  }
  recycle(view.buffer as ArrayBuffer);
}

/** A slab back in the free list (a method of its own so that tests can poison what comes back). */
export const slabEvents = {
  recycled(_slab: ArrayBuffer): void {},
};

function recycle(slab: ArrayBuffer): void {
  slabEvents.recycled(slab);
  if (free.length < KEEP_FREE) free.push(slab);
  else states.delete(slab);
}

function takeSlab(): ArrayBuffer {
  const slab = free.pop() ?? (Buffer.allocUnsafeSlow(SLAB_SIZE).buffer as ArrayBuffer);
  states.set(slab, { held: 0, filling: true });
  return slab;
}

/**
 * Read memory for one socket, in net.Socket `onread`'s order: `next()`
 * gives the memory for the next read (the current slab's free tail; called
 * once before the first read and after each read's callback), `got(n)` the
 * n bytes that read put there. A slab is left behind only after the bytes
 * read into it were handed on, so that whoever kept a view has retained it.
 */
export class SlabReader {
  private slab: ArrayBuffer = takeSlab();
  private used = 0;
  private last = 0;
  private tail: Buffer = Buffer.from(this.slab, 0, SLAB_SIZE);

  got(n: number): Buffer {
    this.last = n;
    return this.tail.subarray(0, n);
  }

  next(): Buffer {
    this.used += this.last;
    this.last = 0;
    if (SLAB_SIZE - this.used < MIN_READ) {
      this.finish();
      this.slab = takeSlab();
      this.used = 0;
    }
    this.tail = Buffer.from(this.slab, this.used, SLAB_SIZE - this.used);
    return this.tail;
  }

  /** The reader is done with its slab (the socket is closed). */
  finish(): void {
    const s = states.get(this.slab);
    if (s === undefined || !s.filling) return;
    s.filling = false;
    if (s.held === 0) recycle(this.slab);
  }
}
