/**
 * ContiguousParts: a split CopyData's parts (BackendParser's copyPart) joined
 * where they lie next to each other in memory, without a copy.
 *
 * A base backup's ~32 KiB CopyData messages arrive across socket reads, so
 * the parser hands half of them out in two parts, and every part becomes a
 * data event that each stage handles (86,786 events averaging 18.5 KB for a
 * 1.6 GB backup). But slab reads (src/io/slab-pool.ts) fill one 256 KiB slab
 * read after read: a part that ends one read and the part that starts the
 * next are usually neighbours. So a part that does not end its message is
 * held (retained, so that its slab cannot be recycled meanwhile) until the
 * next part comes: a neighbour extends it into one view, anything else
 * sends it on first. The bytes and their order are unchanged: a view over
 * two adjacent valid ranges is their concatenation (so reads that are not
 * slabs, each a buffer of its own, are only joined when they happen to be
 * adjacent too). A message's last part is never held.
 */
import { release, retain } from '../io/slab-pool';

export type PartHandler = (part: Buffer, first: boolean, last: boolean) => void;

export class ContiguousParts {
  private held: Buffer | null = null;
  private heldFirst = false;

  constructor(private readonly next: PartHandler) {}

  part(part: Buffer, first: boolean, last: boolean): void {
    const held = this.held;
    if (held !== null) {
      this.held = null;
      if (!first && part.buffer === held.buffer && part.byteOffset === held.byteOffset + held.length) {
        part = Buffer.from(held.buffer, held.byteOffset, held.length + part.length);
        first = this.heldFirst;
      } else {
        this.next(held, this.heldFirst, false);
      }
    }
    if (last) {
      this.next(part, first, true);
    } else {
      retain(part);
      this.held = part;
      this.heldFirst = first;
    }
    // After next(): whoever keeps a view has retained it by then.
    if (held !== null) release(held);
  }
}
