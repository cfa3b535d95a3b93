/**
 * Connection settings: a libpq conninfo (`key=value ...` or a postgres:// URI)
 * merged with -h/-p/-U; pg fills the rest from PG* environment variables.
 * The password, when the server asks for one, comes as libpq finds it:
 * password= in the conninfo, PGPASSWORD, else the password file (passfile=,
 * PGPASSFILE or ~/.pgpass), read here rather than by pg (whose own lookup
 * prints a deprecation warning and does not match `replication` entries).
 * Passwords are kept out of anything printable: errors name host and port only.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parse as parseUri } from 'pg-connection-string';
import type { ClientConfig } from 'pg';
import { AuthError, UsageError } from './errors';
import { LIMITS, readLimitedSync } from './io/read-limited';

export interface ConnectionOptions {
  conninfo?: string;
  host?: string;
  port?: string | number;
  user?: string;
  password?: string;
  database?: string;
}

/** Parses libpq's keyword/value form: `host=x port=5432 password='a b\'c'`. */
export function parseKeywordValue(conninfo: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = conninfo.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(conninfo[i])) i++;
  };
  while (true) {
    skipSpace();
    if (i >= n) break;
    const start = i;
    while (i < n && conninfo[i] !== '=' && !/\s/.test(conninfo[i])) i++;
    const key = conninfo.slice(start, i);
    skipSpace();
    if (conninfo[i] !== '=') throw new UsageError(`missing "=" after "${key}" in connection info string`);
    i++;
    skipSpace();
    let value = '';
    if (conninfo[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = conninfo[i++];
        if (c === '\\' && i < n) value += conninfo[i++];
        else if (c === "'") {
          closed = true;
          break;
        } else value += c;
      }
      if (!closed) throw new UsageError('unterminated quoted string in connection info string');
    } else {
      while (i < n && !/\s/.test(conninfo[i])) {
        const c = conninfo[i++];
        value += c === '\\' && i < n ? conninfo[i++] : c;
      }
    }
    if (!key) throw new UsageError('empty keyword in connection info string');
    out[key] = value;
  }
  return out;
}

function parseConninfo(conninfo: string): Record<string, string> {
  if (/^postgres(ql)?:\/\//.test(conninfo)) {
    const parsed = parseUri(conninfo) as Record<string, unknown>;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v === 'string' && v !== '') out[k === 'database' ? 'dbname' : k] = v;
    }
    return out;
  }
  return parseKeywordValue(conninfo);
}

const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

/**
 * A pg ClientConfig for a replication connection. `replication` is 'database'
 * or true (physical walsender, as pg_basebackup uses).
 */
export function clientConfig(opts: ConnectionOptions, replication: true | 'database' | false = true): ClientConfig {
  const kv = opts.conninfo ? parseConninfo(opts.conninfo) : {};
  const config: ClientConfig & Record<string, unknown> = {};
  const host = opts.host ?? kv.host ?? kv.hostaddr;
  if (host) config.host = host;
  const port = opts.port ?? kv.port;
  if (port !== undefined && port !== '') {
    const p = Number(port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`invalid port number "${port}"`);
    config.port = p;
  }
  const user = opts.user ?? kv.user;
  if (user) config.user = user;
  // As libpq: an empty PGPASSWORD counts as unset.
  const password = opts.password ?? kv.password ?? (process.env.PGPASSWORD || undefined);
  if (password !== undefined) config.password = password;
  else {
    // Asked only when the server wants a password; a missing one is an auth error naming where we looked.
    const key = passwordKey(opts, kv, replication);
    config.password = async () => {
      const found = lookupPassfile(key);
      if (found.password !== undefined) return found.password;
      const note = found.ignored ? `, ignored: ${found.ignored}` : '';
      throw new AuthError(`no password supplied for user "${key.user}" (give password= in -d, PGPASSWORD or an entry in ${found.where}${note})`);
    };
  }
  const database = opts.database ?? kv.dbname;
  if (database) config.database = database;
  if (kv.application_name) config.application_name = kv.application_name;
  else config.application_name = 'pgbb';
  if (kv.connect_timeout) config.connectionTimeoutMillis = Number(kv.connect_timeout) * 1000;
  const sslmode = kv.sslmode ?? process.env.PGSSLMODE;
  if (sslmode) {
    if (!SSL_MODES.has(sslmode)) throw new UsageError(`invalid sslmode value "${sslmode}"`);
    if (sslmode === 'disable' || sslmode === 'allow' || sslmode === 'prefer') config.ssl = false;
    else config.ssl = { rejectUnauthorized: sslmode !== 'require' };
  }
  if (replication) config.replication = replication === true ? 'true' : 'database';
  config.keepAlive = true;
  config.keepAliveInitialDelayMillis = 10_000;
  return config;
}

interface PasswordKey {
  host: string;
  port: string;
  database: string;
  user: string;
  passfile: string;
}

function passwordKey(opts: ConnectionOptions, kv: Record<string, string>, replication: true | 'database' | false): PasswordKey {
  const host = opts.host ?? kv.host ?? process.env.PGHOST ?? '';
  const user = opts.user ?? kv.user ?? process.env.PGUSER ?? userInfo().username;
  return {
    // As libpq: a socket directory (or no host) matches `localhost` entries.
    host: !host || host.startsWith('/') ? 'localhost' : host,
    port: String(opts.port ?? kv.port ?? process.env.PGPORT ?? 5432),
    // As pg_basebackup: a physical replication connection's database is `replication`.
    database: opts.database ?? kv.dbname ?? (replication === true ? 'replication' : process.env.PGDATABASE ?? user),
    user,
    passfile: kv.passfile || process.env.PGPASSFILE || join(process.env.HOME || homedir(), '.pgpass'),
  };
}

/**
 * One line of a password file: `host:port:database:user:password`, `*`
 * matching anything, `\` escaping `:` and `\`. Returns the five fields, or
 * null for a comment, a blank or a malformed line.
 */
export function parsePassfileLine(line: string): [string, string, string, string, string] | null {
  if (line.startsWith('#') || !line.trim()) return null;
  const fields: string[] = [''];
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) fields[fields.length - 1] += line[++i];
    else if (c === ':' && fields.length < 5) fields.push('');
    else fields[fields.length - 1] += c;
  }
  return fields.length === 5 ? (fields as [string, string, string, string, string]) : null;
}

/** The password file's entry for this connection, as libpq picks it: the first line that matches. */
export function lookupPassfile(key: PasswordKey): { password?: string; where: string; ignored?: string } {
  const where = key.passfile;
  let text: string;
  try {
    // Not following a link, not blocking on a FIFO, capped: a file that is not there or not regular is no password file.
    // libpq ignores a password file others can read (judged on the opened file); so do we, and say so.
    let open = false;
    const buf = readLimitedSync(key.passfile, LIMITS.passfile, (st) => !(open = (st.mode & 0o077) !== 0));
    if (open) return { where, ignored: 'it has group or world access (chmod 0600)' };
    if (!buf) return { where };
    text = buf.toString('utf8');
  } catch (err) {
    // A link, a FIFO, a huge file: not read, and the message says why.
    return { where, ignored: (err as Error).message };
  }
  const want = [key.host, key.port, key.database, key.user];
  for (const line of text.split(/\r?\n/)) {
    const f = parsePassfileLine(line);
    if (f && want.every((w, i) => f[i] === '*' || f[i] === w)) return { password: f[4], where };
  }
  return { where };
}

/**
 * The password a connection would use, if one is known without asking the
 * server (conninfo, PGPASSWORD, password file): the CLI blanks it in its output.
 */
export function knownPassword(opts: ConnectionOptions, replication: true | 'database' | false = true): string | undefined {
  const kv = opts.conninfo ? parseConninfo(opts.conninfo) : {};
  return opts.password ?? kv.password ?? (process.env.PGPASSWORD || lookupPassfile(passwordKey(opts, kv, replication)).password);
}

/** host:port/user for messages; never the password. */
export function describeServer(config: ClientConfig): string {
  const host = config.host ?? process.env.PGHOST ?? 'localhost';
  const port = config.port ?? process.env.PGPORT ?? 5432;
  return `${host}:${port}`;
}
