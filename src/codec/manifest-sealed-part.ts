/**
 * The part of a backup_manifest its Manifest-Checksum covers: every byte up
 * to and including the newline before the last line (parse_manifest.c),
 * hashed (SHA-256) as the pieces come. Since any line may turn out to be
 * the last, only the bytes after the newline before the last one seen are
 * held back: normally one or two lines. Pure.
 */
import { createHash, type Hash } from 'node:crypto';

export class SealedPart {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes since the newline before the last one seen. */
  private heldParts: Buffer[] = [];
  private hashedAny = false;

  /** Hashes all but the bytes after the newline before the last one; those may belong to the last line. */
  write(piece: Buffer): void {
    const last = piece.lastIndexOf(0x0a);
    if (last < 0) {
      // No newline: nothing more can be hashed yet (copied: the caller may reuse its buffer).
      this.heldParts.push(Buffer.from(piece));
      return;
    }
    const before = this.heldParts.length ? Buffer.concat(this.heldParts) : null;
    this.heldParts = [];
    const prevInPiece = last > 0 ? piece.lastIndexOf(0x0a, last - 1) : -1; // (a negative offset would count from the end)
    if (prevInPiece >= 0) {
      if (before) this.hash.update(before);
      this.hash.update(piece.subarray(0, prevInPiece + 1));
      this.hashedAny = true;
      this.heldParts.push(Buffer.from(piece.subarray(prevInPiece + 1)));
      return;
    }
    // The newline before the last one, if any, is in what was held.
    const prev = before ? before.lastIndexOf(0x0a) : -1;
    if (prev >= 0) {
      this.hash.update(before!.subarray(0, prev + 1));
      this.hashedAny = true;
      this.heldParts.push(before!.subarray(prev + 1));
    } else if (before) {
      this.heldParts.push(before);
    }
    this.heldParts.push(Buffer.from(piece));
  }

  /** The SHA-256 of the sealed part, or what is wrong with the layout (parseManifest's words). */
  end(): { sha256: string } | { fault: string } {
    const held = Buffer.concat(this.heldParts);
    if (held[held.length - 1] !== 0x0a) return { fault: 'last line not newline-terminated' };
    const penultimate = held.length >= 2 ? held.lastIndexOf(0x0a, held.length - 2) : -1;
    if (penultimate < 0 && !this.hashedAny) return { fault: 'expected at least 2 lines' };
    if (penultimate >= 0) this.hash.update(held.subarray(0, penultimate + 1));
    return { sha256: this.hash.digest('hex') };
  }
}
