/**
 * The part of a backup_manifest its Manifest-Checksum covers: every byte up
 * to and including the newline before the last line (parse_manifest.c),
 * hashed (SHA-256) as the pieces come. Since any line may turn out to be
 * the last, the hash is kept as it stood at the last two newlines seen
 * (copies of its state, not the bytes since): memory is the same for a
 * line of 500 MiB as for one of 150 bytes. Pure.
 */
import { createHash, type Hash } from 'node:crypto';

export class SealedPart {
  /** Over every byte so far. */
  private readonly all: Hash = createHash('sha256');
  /** As `all` stood just after the last newline seen, and after the one before it. */
  private atLast: Hash | null = null;
  private atBeforeLast: Hash | null = null;
  private lastByte = -1;

  write(piece: Buffer): void {
    if (piece.length === 0) return;
    this.lastByte = piece[piece.length - 1];
    const last = piece.lastIndexOf(0x0a);
    if (last < 0) return void this.all.update(piece);
    const prev = last > 0 ? piece.lastIndexOf(0x0a, last - 1) : -1; // (a negative offset would count from the end)
    if (prev >= 0) {
      this.all.update(piece.subarray(0, prev + 1));
      this.atBeforeLast = this.all.copy();
      this.all.update(piece.subarray(prev + 1, last + 1));
    } else {
      this.all.update(piece.subarray(0, last + 1));
      this.atBeforeLast = this.atLast;
    }
    this.atLast = this.all.copy();
    this.all.update(piece.subarray(last + 1));
  }

  /** The SHA-256 of the sealed part, or what is wrong with the layout (parseManifest's words). */
  end(): { sha256: string } | { fault: string } {
    if (this.lastByte !== 0x0a) return { fault: 'last line not newline-terminated' };
    if (!this.atBeforeLast) return { fault: 'expected at least 2 lines' };
    return { sha256: this.atBeforeLast.digest('hex') };
  }
}
