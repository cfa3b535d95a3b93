/**
 * From a decoded member header (plus pending pax / GNU long-name overrides)
 * to the member the parser reports. Split from tar-parser.ts: naming, kinds
 * and range checks are one job, framing blocks is another.
 *
 * Paths: a leading "./" and trailing "/" are stripped (PostgreSQL writes
 *      "./pg_wal/archive_status/" and ends directory and symlink names with
 *      "/"); entries whose path becomes "" or "." are skipped. Names and
 *      link targets are decoded losslessly (src/codec/path-bytes.ts: bytes that
 *      are not UTF-8 as lone surrogates). No security checks here: absolute
 *      paths and ".." are reported as they are.
 * Members: `mode` is the permission bits (& 0o7777); `size` is 0 for
 *      directories and symlinks; `mtime` keeps pax fractional seconds (one
 *      beyond what a Date holds is an error).
 */

import { TarFormatError } from '../../errors';
import { TarHeader } from './header';
import { PendingOverrides } from './tar-extended-headers';
import { showPath } from '../path-bytes';

export interface TarMember {
  path: string;
  kind: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtime: Date;
  linkTarget?: string;
  /** A pax `comment` record on this member. */
  comment?: string;
}

const UNSUPPORTED: Record<string, string> = {
  '1': 'hard link', '3': 'character device', '4': 'block device', '6': 'FIFO',
};

/** A member name for messages: escaped bytes as \xNN, at most 200 characters. */
export function display(name: string): string {
  const s = showPath(name);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function normalisePath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  let end = p.length;
  while (end > 0 && p.charCodeAt(end - 1) === 0x2f) end--;
  return end === p.length ? p : p.slice(0, end);
}

export interface ResolvedMember {
  /** The member's name for messages. */
  shown: string;
  /** Payload bytes that follow the header (the pax size wins over the header's). */
  size: number;
  /** Null when the path is "" or "." (skipped: its payload is read and dropped). */
  member: TarMember | null;
}

/** Applies the overrides to `h` and checks the type and mtime (TarFormatError naming `archive`). */
export function resolveMember(h: TarHeader, o: PendingOverrides, archive: string): ResolvedMember {
  const rawPath = o.pax.path ?? o.longName ?? h.name;
  const path = normalisePath(rawPath);
  const size = o.pax.size ?? h.size;
  const mtime = o.pax.mtime ?? h.mtime;
  const linkTarget = o.pax.linkpath ?? o.longLink ?? h.linkname;
  const comment = o.pax.comment;
  const shown = display(path === '' || path === '.' ? rawPath : path);

  const type = h.type;
  let kind: TarMember['kind'];
  if (type === '0' || type === '7') kind = 'file';
  else if (type === '5') kind = 'directory';
  else if (type === '2') kind = 'symlink';
  else {
    const code = type.charCodeAt(0);
    const what = UNSUPPORTED[type] ?? (code > 0x20 && code < 0x7f ? `type '${type}'` : `type 0x${code.toString(16).padStart(2, '0')}`);
    throw new TarFormatError(`unsupported tar member "${shown}" in ${archive}: ${what}`);
  }

  // Seconds beyond what a Date holds (±8.64e12 s: a base-256 or pax mtime can say more).
  const date = new Date(mtime * 1000);
  if (Number.isNaN(date.getTime())) {
    throw new TarFormatError(`mtime ${mtime} of member "${shown}" in ${archive} is out of range`);
  }
  if (path === '' || path === '.') return { shown, size, member: null };
  const member: TarMember = {
    path,
    kind,
    size: kind === 'file' ? size : 0,
    mode: h.mode & 0o7777,
    mtime: date,
  };
  if (kind === 'symlink') member.linkTarget = linkTarget;
  if (comment !== undefined) member.comment = comment;
  return { shown, size, member };
}
