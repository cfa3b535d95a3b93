/** Parsing of pg_basebackup-style option values shared by commands. */
import { UsageError } from '../errors';

/** -r RATE: kB/s, with an optional k (kB) or M (MB) suffix; 32 kB/s to 1 GB/s. */
export function parseMaxRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kM]?)\s*$/.exec(text);
  if (!m) throw new UsageError(`invalid transfer rate "${text}"`);
  let rate = Number(m[1]);
  if (m[2] === 'M') rate *= 1024;
  rate = Math.floor(rate);
  if (rate === 0) throw new UsageError('transfer rate must be greater than zero');
  if (rate < 32 || rate > 1024 * 1024) {
    throw new UsageError(`transfer rate "${text}" is out of range (must be between 32 kB/s and 1 GB/s)`);
  }
  return rate;
}

/** -T OLD=NEW (a literal `=` is written `\=`); both sides absolute. */
export function parseTablespaceMapping(text: string, into: Record<string, string>): Record<string, string> {
  let old = '';
  let i = 0;
  for (; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '=') {
      old += '=';
      i++;
    } else if (text[i] === '=') break;
    else old += text[i];
  }
  if (i >= text.length) throw new UsageError(`invalid tablespace mapping format "${text}", must be "OLDDIR=NEWDIR"`);
  // As pg_basebackup: a second unescaped "=" is an error, not part of NEWDIR.
  if (/(^|[^\\])=/.test(text.slice(i + 1))) throw new UsageError(`multiple "=" signs in tablespace mapping "${text}"`);
  const neu = text.slice(i + 1).replace(/\\=/g, '=');
  if (!old || !neu) throw new UsageError(`invalid tablespace mapping format "${text}", must be "OLDDIR=NEWDIR"`);
  if (!old.startsWith('/')) throw new UsageError(`old directory is not an absolute path in tablespace mapping: ${old}`);
  if (!neu.startsWith('/')) throw new UsageError(`new directory is not an absolute path in tablespace mapping: ${neu}`);
  into[old.replace(/\/+$/, '') || '/'] = neu.replace(/\/+$/, '') || '/';
  return into;
}
