/**
 * Parses `tablespace_map` (pure): what pg_basebackup -Ft (and BASE_BACKUP's
 * TABLESPACE_MAP) puts in base.tar instead of pg_tblspc/<oid> symlinks.
 * One line per tablespace, `<oid> <location>`; since PostgreSQL 15 a
 * backslash makes the next character literal (a location may hold `\n`,
 * `\r` or `\`), as xlog.c's read_tablespace_map reads it.
 *
 * Errors: TarFormatError naming the line, for a line that is not an OID, a
 * space and a non-empty location, or an OID listed twice.
 */
import { TarFormatError } from '../errors';

export interface TablespaceMapEntry {
  oid: string;
  location: string;
}

export function parseTablespaceMap(text: string, file = 'tablespace_map'): TablespaceMapEntry[] {
  const lines: string[] = [];
  let line = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) line += text[++i];
    else if (ch === '\n') {
      lines.push(line);
      line = '';
    } else line += ch;
  }
  if (line !== '') lines.push(line);
  const out: TablespaceMapEntry[] = [];
  const seen = new Set<string>();
  for (const [i, l] of lines.entries()) {
    const m = /^(\d{1,10}) (.+)$/s.exec(l);
    if (!m) throw new TarFormatError(`"${file}" line ${i + 1} is not "<oid> <location>"`);
    if (seen.has(m[1])) throw new TarFormatError(`"${file}" lists tablespace ${m[1]} twice`);
    seen.add(m[1]);
    out.push({ oid: m[1], location: m[2] });
  }
  return out;
}
