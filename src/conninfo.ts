/**
 * Connection settings: a libpq conninfo (`key=value ...` or a postgres:// URI)
 * merged with -h/-p/-U; pg fills the rest from PG* environment variables and
 * ~/.pgpass. Passwords are kept out of anything printable.
 */
import { parse as parseUri } from 'pg-connection-string';
import type { ClientConfig } from 'pg';
import { UsageError } from './errors';

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
  const password = opts.password ?? kv.password;
  if (password !== undefined) config.password = password;
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

/** host:port/user for messages; never the password. */
export function describeServer(config: ClientConfig): string {
  const host = config.host ?? process.env.PGHOST ?? 'localhost';
  const port = config.port ?? process.env.PGPORT ?? 5432;
  return `${host}:${port}`;
}
