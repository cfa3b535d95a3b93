/**
 * File names as strings, losslessly (pure functions, no streams).
 *
 * A Linux file name is bytes, and PostgreSQL's tar and manifest carry those
 * bytes as they are (the manifest as "Encoded-Path" when they are not UTF-8).
 * pgbb's events, Map keys, regexes and messages want strings, so every member
 * path and link target is the string this module makes of its bytes:
 *
 *   pathFromBytes(bytes) → string   valid UTF-8 decodes as usual; each byte
 *                                   that is not part of a valid sequence
 *                                   becomes one lone surrogate U+DC80–U+DCFF
 *                                   (0xDC00 + the byte), as Python's
 *                                   "surrogateescape" does
 *   pathToBytes(string) → Buffer    the inverse: pathToBytes(pathFromBytes(b))
 *                                   equals b for every b
 *   fsPath(string)                  what to hand node:fs: the string itself
 *                                   when it is well-formed Unicode, else its
 *                                   bytes (node:fs takes Buffer paths)
 *   isRawPath(string)               true when it carries escaped bytes
 *   showPath(string)                for messages: escaped bytes and control
 *                                   characters as \xNN
 *
 * Why not a separate `rawPath: Buffer` beside `path`: the string alone stays
 * exact through every string operation pgbb does on paths (prefixing
 * `pg_tblspc/<oid>/`, stripping it, Map lookups in manifest verification,
 * duplicate detection), with no second field to keep in step. Valid UTF-8
 * never decodes to U+DC80–U+DCFF (surrogates are not encodable in UTF-8), so
 * the mapping is one-to-one; only the places where bytes leave pgbb (tar
 * headers, manifest, node:fs) call pathToBytes / fsPath.
 */
import { isUtf8 } from 'node:buffer';

const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Length of the valid UTF-8 sequence starting at `i`, or 0 (same rules as isUtf8: no overlongs, no surrogates, ≤ U+10FFFF). */
function sequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Decodes `buf[start, end)` losslessly (see the top of this file). */
export function pathFromBytes(buf: Buffer, start = 0, end = buf.length): string {
  const b = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  if (isUtf8(b)) return b.toString('utf8');
  let out = '';
  let run = 0;
  let i = 0;
  while (i < b.length) {
    const n = sequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (run < i) out += b.toString('utf8', run, i);
    out += String.fromCharCode(0xdc00 + b[i]!);
    run = ++i;
  }
  if (run < b.length) out += b.toString('utf8', run, b.length);
  return out;
}

/** The bytes a path string stands for: UTF-8, with each U+DC80–U+DCFF back to its byte. */
export function pathToBytes(s: string): Buffer {
  if (wellFormed(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++; // a pair: one code point, plain UTF-8
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      if (run < i) parts.push(Buffer.from(s.slice(run, i), 'utf8'));
      parts.push(Buffer.from([c - 0xdc00]));
      run = i + 1;
    }
    // Any other lone surrogate was not made by pathFromBytes: UTF-8 encoding
    // writes it as U+FFFD, as node does.
  }
  if (run < s.length) parts.push(Buffer.from(s.slice(run), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * pathToBytes(s) written into `scratch` when it fits (then a view of it, valid
 * until the scratch is written again), else a new buffer: per-file callers
 * then allocate nothing per path.
 */
export function pathBytesIn(s: string, scratch: Buffer): Buffer {
  if (s.length * 3 > scratch.length || !wellFormed(s)) return pathToBytes(s);
  return scratch.subarray(0, scratch.write(s, 0, 'utf8'));
}

/** True when `s` carries bytes that are not valid UTF-8. */
export function isRawPath(s: string): boolean {
  return !wellFormed(s) && /[\udc80-\udcff]/u.test(s);
}

/** A path for node:fs: the string, or its bytes when it carries escaped ones. */
export function fsPath(s: string): string | Buffer {
  return wellFormed(s) ? s : pathToBytes(s);
}

/**
 * For messages, one line: escaped bytes (which would print as U+FFFD) and
 * control characters (a newline in a file name) shown as \xNN.
 */
export function showPath(s: string): string {
  if (wellFormed(s) && !/[\x00-\x1f\x7f]/.test(s)) return s;
  return s.replace(/[\x00-\x1f\x7f]|[\udc80-\udcff]/gu, (c) => {
    const b = c.charCodeAt(0);
    return `\\x${(b >= 0xdc00 ? b - 0xdc00 : b).toString(16).padStart(2, '0')}`;
  });
}
