/**
 * Connection settings: a libpq conninfo (`key=value ...` or a postgres:// URI,
 * src/net/conninfo-parse.ts) merged with -h/-p/-U and the PG* variables libpq
 * reads, all checked once (connectionSettings) and handed to pg explicitly,
 * so that pg never reads the environment itself (PGPORT=abc was a crash).
 * TLS follows libpq's sslmode (src/net/tls-options.ts).
 * The password, when the server asks for one, comes as libpq finds it:
 * password= in the conninfo, PGPASSWORD, else the password file (passfile=,
 * PGPASSFILE or ~/.pgpass), read here rather than by pg (whose own lookup
 * prints a deprecation warning and does not match `replication` entries).
 * Passwords are kept out of anything printable by construction: parse errors
 * name a keyword or a position, never a value; connection errors name host
 * and port only. Nothing is masked afterwards.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { ClientConfig } from 'pg';
import { AuthError, IoError, UsageError } from '../errors';
import { LIMITS } from '../io/read-limited';
import { checkKeyword, parseConninfo } from './conninfo-parse';
import { readUserFile, tlsPlan, type TlsPlan } from './tls-options';

export { parseKeywordValue } from './conninfo-parse';

export interface ConnectionOptions {
  conninfo?: string;
  host?: string;
  port?: string | number;
  user?: string;
  password?: string;
  database?: string;
}

/** The environment variables libpq reads, by keyword (used where neither -d nor -h/-p/-U give one). */
const ENV: Record<string, string> = {
  host: 'PGHOST', hostaddr: 'PGHOSTADDR', port: 'PGPORT', dbname: 'PGDATABASE', user: 'PGUSER', passfile: 'PGPASSFILE',
  options: 'PGOPTIONS', application_name: 'PGAPPNAME', connect_timeout: 'PGCONNECT_TIMEOUT', sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT', sslcert: 'PGSSLCERT', sslkey: 'PGSSLKEY', sslsni: 'PGSSLSNI',
  ssl_min_protocol_version: 'PGSSLMINPROTOCOLVERSION', ssl_max_protocol_version: 'PGSSLMAXPROTOCOLVERSION',
  gssencmode: 'PGGSSENCMODE', channel_binding: 'PGCHANNELBINDING', sslcertmode: 'PGSSLCERTMODE', sslnegotiation: 'PGSSLNEGOTIATION',
  target_session_attrs: 'PGTARGETSESSIONATTRS', service: 'PGSERVICE', require_auth: 'PGREQUIREAUTH', requirepeer: 'PGREQUIREPEER',
  sslcrl: 'PGSSLCRL', sslcrldir: 'PGSSLCRLDIR', load_balance_hosts: 'PGLOADBALANCEHOSTS',
};

/**
 * Every connection setting, from -h/-p/-U over the conninfo over PG*
 * variables, checked once (the CLI calls this before it creates or locks
 * anything). The password is not in it: see clientConfig.
 */
export function connectionSettings(opts: ConnectionOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, env] of Object.entries(ENV)) {
    const v = process.env[env];
    if (v) {
      checkKeyword(key, v, `environment variable ${env}: connection option`);
      out[key] = v;
    }
  }
  const kv = opts.conninfo ? parseConninfo(opts.conninfo) : {};
  delete kv.password;
  Object.assign(out, kv);
  if (opts.host !== undefined) out.host = opts.host;
  if (opts.port !== undefined) out.port = String(opts.port);
  if (out.port !== undefined) {
    // A URI missing its "@host" reads the password as the port (postgresql://user:secret/db): never quoted from there.
    const from = opts.port !== undefined ? `"${out.port}" given with -p` : kv.port !== undefined ? 'in the connection string' : `"${out.port}" in PGPORT`;
    checkPort(out.port, from);
  }
  if (opts.user !== undefined) out.user = opts.user;
  if (opts.database !== undefined) out.dbname = opts.database;
  if (out.host?.includes(',') || out.hostaddr?.includes(',') || out.port?.includes(',')) {
    throw new UsageError('more than one host or port given: pgbb connects to one server');
  }
  if (out.hostaddr !== undefined && isIP(out.hostaddr) === 0) throw new UsageError(`invalid hostaddr "${out.hostaddr}": must be a numeric IP address`);
  if (out.connect_timeout !== undefined && !/^\d+$/.test(out.connect_timeout)) {
    throw new UsageError(`invalid integer value "${out.connect_timeout}" for connection option "connect_timeout"`);
  }
  return out;
}

function checkPort(port: string, what: string): void {
  if (port.includes(',')) return; // refused below as a list
  const p = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(p >= 1 && p <= 65535)) throw new UsageError(`invalid port number ${what} (1 to 65535)`);
}

/** A pg ClientConfig carrying the TLS attempts that ReplicationConnection.connect makes in turn. */
export type PgbbClientConfig = ClientConfig & { pgbbTls?: TlsPlan };

/**
 * A pg ClientConfig for a replication connection. `replication` is 'database'
 * or true (physical walsender, as pg_basebackup uses).
 */
export function clientConfig(opts: ConnectionOptions, replication: true | 'database' | false = true): PgbbClientConfig {
  const s = connectionSettings(opts);
  const kvPassword = opts.conninfo ? parseConninfo(opts.conninfo).password : undefined;
  const config: PgbbClientConfig & Record<string, unknown> = {};
  // libpq connects to hostaddr when given, and checks certificates against host.
  const host = s.host || s.hostaddr || defaultSocketDir(s.port || '5432');
  config.host = s.hostaddr || host;
  config.port = s.port ? Number(s.port) : 5432;
  config.user = s.user || userInfo().username;
  // As libpq: an empty PGPASSWORD counts as unset.
  const password = opts.password ?? kvPassword ?? (process.env.PGPASSWORD || undefined);
  if (password !== undefined) config.password = password;
  else {
    // Asked only when the server wants a password; a missing one is an auth error naming where we looked.
    const key = passwordKey(s, replication);
    config.password = async () => {
      const found = lookupPassfile(key);
      if (found.password !== undefined) return found.password;
      const note = found.ignored ? `, ignored: ${found.ignored}` : '';
      throw new AuthError(`no password supplied for user "${key.user}" (give password= in -d, PGPASSWORD or an entry in ${found.where}${note})`);
    };
  }
  if (s.dbname) config.database = s.dbname;
  config.application_name = s.application_name || s.fallback_application_name || 'pgbb';
  if (s.options) config.options = s.options;
  if (s.connect_timeout && Number(s.connect_timeout) > 0) config.connectionTimeoutMillis = Number(s.connect_timeout) * 1000;
  const plan = tlsPlan(s, host, process.env.HOME || homedir());
  config.pgbbTls = plan;
  // Always set, so that pg never reads PGSSLMODE or PGSSLNEGOTIATION itself.
  config.ssl = plan.attempts[0];
  config.sslnegotiation = 'postgres';
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

function passwordKey(s: Record<string, string>, replication: true | 'database' | false): PasswordKey {
  const host = s.host || s.hostaddr || '';
  const user = s.user || userInfo().username;
  return {
    // As libpq: a socket directory (or no host) matches `localhost` entries.
    host: !host || host.startsWith('/') ? 'localhost' : host,
    port: s.port || '5432',
    // As pg_basebackup: a physical replication connection's database is `replication`.
    database: s.dbname || (replication === true ? 'replication' : user),
    user,
    passfile: s.passfile || join(process.env.HOME || homedir(), '.pgpass'),
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
    const st = statSync(key.passfile);
    // libpq ignores a password file others can read; so do we, and say so. Not a regular file: readUserFile says what it is.
    if (st.isFile() && st.mode & 0o077) return { where, ignored: 'it has group or world access (chmod 0600)' };
    // As libpq, a link is followed (stat above did too); never blocking, capped: a FIFO cannot hang the connection.
    const buf = readUserFile(key.passfile, LIMITS.passfile);
    if (!buf) return { where };
    text = buf.toString('utf8');
  } catch (err) {
    return err instanceof IoError ? { where, ignored: err.message } : { where };
  }
  const want = [key.host, key.port, key.database, key.user];
  for (const line of text.split(/\r?\n/)) {
    const f = parsePassfileLine(line);
    if (f && want.every((w, i) => f[i] === '*' || f[i] === w)) return { password: f[4], where };
  }
  return { where };
}

/** host:port for messages; never the password, nor anything else of the conninfo. */
/**
 * Where libpq connects without a host: its Unix socket directory. Debian's
 * libpq is built with /var/run/postgresql, others with /tmp: the first of
 * the two that holds the server's socket (.s.PGSQL.<port>), else the first.
 */
export const SOCKET_DIRS = ['/var/run/postgresql', '/tmp'];
export function defaultSocketDir(port: string, dirs = SOCKET_DIRS): string {
  return dirs.find((d) => existsSync(join(d, `.s.PGSQL.${port}`))) ?? dirs[0];
}

export function describeServer(config: ClientConfig): string {
  // A socket directory is named as libpq names it: the socket file itself.
  if (config.host?.startsWith('/')) return join(config.host, `.s.PGSQL.${config.port ?? 5432}`);
  return `${config.host ?? 'localhost'}:${config.port ?? 5432}`;
}
