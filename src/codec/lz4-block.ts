/**
 * One LZ4 block decoded (lz4's doc/lz4_Block_format.md), pure: the block
 * format under lz4-frame.ts's frames. Nothing in the block is trusted:
 * every literal run and match is checked against the block and the output.
 */
const MIN_MATCH = 4;

/** What is wrong with a block; lz4-frame.ts names the frame and byte. */
export class BlockError extends Error {}

/**
 * Decodes one LZ4 block from `src` into `dst` from `start`, where
 * dst[0, start) is the window matches may reach back into; returns the end
 * of the output. Every length is checked against src and dst.
 */
export function decodeBlock(src: Buffer, dst: Buffer, start: number): number {
  let ip = 0;
  let op = start;
  const iend = src.length;
  const oend = dst.length;
  while (ip < iend) {
    const token = src[ip++];
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new BlockError('literal length runs past the block');
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > iend - ip) throw new BlockError('literals run past the block');
    if (lit > oend - op) throw new BlockError('literals run past the maximum block size');
    if (lit < 32) for (let i = 0; i < lit; i++) dst[op++] = src[ip++];
    else {
      src.copy(dst, op, ip, ip + lit);
      op += lit;
      ip += lit;
    }
    // The last sequence is literals only: the block ends after them.
    if (ip === iend) break;
    if (iend - ip < 2) throw new BlockError('match offset cut short');
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0) throw new BlockError('match offset 0');
    if (offset > op) throw new BlockError(`match offset ${offset} reaches before the window`);
    let len = token & 0x0f;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new BlockError('match length runs past the block');
        b = src[ip++];
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (len > oend - op) throw new BlockError('match runs past the maximum block size');
    let ref = op - offset;
    if (len < 32 || offset < 8) {
      for (let i = 0; i < len; i++) dst[op++] = dst[ref++];
    } else {
      // Overlapping copies repeat the offset's pattern: each pass copies what is there so far.
      let left = len;
      while (left > 0) {
        const n = Math.min(left, op - ref);
        dst.copyWithin(op, ref, ref + n);
        op += n;
        left -= n;
      }
    }
  }
  return op;
}
