/**
 * Where a member's data starts in an uncompressed ustar archive (names in
 * the header's 100-byte field, as PostgreSQL writes them), for tests that
 * change a member's bytes in place.
 */
import { promises as fs } from 'node:fs';

export async function memberOffset(tar: string, name: string): Promise<number> {
  const buf = await fs.readFile(tar);
  const field = (from: number, to: number) => buf.toString('latin1', from, to).replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= buf.length; ) {
    const member = field(at, at + 100);
    if (member === '') break;
    const type = field(at + 156, at + 157);
    const size = parseInt(field(at + 124, at + 136).trim() || '0', 8);
    // pax extended headers (type x) describe the member after them.
    if (member === name && type !== 'x') return at + 512;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name} in ${tar}`);
}

/** Overwrites `bytes` at `offset` bytes into member `name`'s data. */
export async function patchMember(tar: string, name: string, offset: number, bytes: Buffer): Promise<void> {
  const at = await memberOffset(tar, name);
  const fh = await fs.open(tar, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, at + offset);
  } finally {
    await fh.close();
  }
}
