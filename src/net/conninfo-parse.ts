/**
 * libpq connection strings, parsed and checked: the keyword/value form
 * (`host=x port=5432 password='a b\'c'`) and the URI form
 * (`postgresql://user:pw@host:port/db?key=value`), to one keyword → value map.
 *
 * Only libpq's own keywords are accepted (`invalid connection option "foo"`,
 * as libpq says); of those, the ones pgbb cannot honour and that would change
 * where or how securely it connects (a service file, required channel
 * binding, a CRL…) are refused rather than ignored (see KEYWORDS).
 *
 * Messages never quote a value (a value may be a password, and a stray word
 * may be part of one): they name the keyword, or the position in the string.
 *
 * Errors: UsageError.
 */
import { UsageError } from '../errors';

/**
 * libpq's keywords (PostgreSQL 18) and what pgbb does with each:
 * 'use' — honoured; 'ignore' — accepted, no effect that matters here;
 * a function — accepted when it returns true for the value, refused otherwise.
 */
const KEYWORDS: Record<string, 'use' | 'ignore' | 'refuse' | ((v: string) => boolean)> = {
  host: 'use', hostaddr: 'use', port: 'use', dbname: 'use', user: 'use', password: 'use', passfile: 'use',
  connect_timeout: 'use', application_name: 'use', fallback_application_name: 'use', options: 'use',
  sslmode: 'use', sslrootcert: 'use', sslcert: 'use', sslkey: 'use', sslpassword: 'use', sslsni: 'use',
  ssl_min_protocol_version: 'use', ssl_max_protocol_version: 'use',
  // pgbb asks for the replication mode it needs itself; keepalives are its own (conninfo.ts).
  replication: 'ignore', client_encoding: 'ignore', keepalives: 'ignore', keepalives_idle: 'ignore',
  keepalives_interval: 'ignore', keepalives_count: 'ignore', tcp_user_timeout: 'ignore', sslcompression: 'ignore',
  krbsrvname: 'ignore', gsslib: 'ignore', gssdelegation: 'ignore', load_balance_hosts: 'ignore',
  gssencmode: (v) => v === 'disable' || v === 'prefer',
  channel_binding: (v) => v === 'disable' || v === 'prefer',
  sslcertmode: (v) => v === 'disable' || v === 'allow',
  sslnegotiation: (v) => v === 'postgres',
  target_session_attrs: (v) => v === 'any',
  service: 'refuse', require_auth: 'refuse', requirepeer: 'refuse', sslcrl: 'refuse', sslcrldir: 'refuse',
  sslkeylogfile: 'refuse', min_protocol_version: 'refuse', max_protocol_version: 'refuse',
  scram_client_key: 'refuse', scram_server_key: 'refuse',
  oauth_issuer: 'refuse', oauth_client_id: 'refuse', oauth_client_secret: 'refuse', oauth_scope: 'refuse',
};

/** Refuses a keyword libpq does not know, or one pgbb cannot honour with this value (named, never the value). */
export function checkKeyword(key: string, value: string, where = 'connection option'): void {
  const rule = Object.hasOwn(KEYWORDS, key) ? KEYWORDS[key] : undefined;
  if (rule === undefined) throw new UsageError(`invalid ${where} "${key}"`);
  if (rule === 'refuse' || (typeof rule === 'function' && !rule(value))) {
    throw new UsageError(`${where} "${key}"${rule === 'refuse' ? '' : ' with this value'} is not supported by pgbb`);
  }
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
    // The word may be part of a password (an unquoted space): say where, not what.
    if (conninfo[i] !== '=') throw new UsageError(`missing "=" after the word at position ${start + 1} in connection info string`);
    if (!key) throw new UsageError(`empty keyword at position ${start + 1} in connection info string`);
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
      if (!closed) throw new UsageError(`unterminated quoted string in connection info string (the value of "${key}")`);
    } else {
      while (i < n && !/\s/.test(conninfo[i])) {
        const c = conninfo[i++];
        value += c === '\\' && i < n ? conninfo[i++] : c;
      }
    }
    checkKeyword(key, value);
    out[key] = value;
  }
  return out;
}

/** %XX decoding as libpq does it; a bad escape (or %00) is named by its position. */
function decode(s: string, offset: number): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '%') {
      bytes.push(...Buffer.from(s[i]));
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex) || hex === '00') {
      throw new UsageError(`invalid percent-encoded token at position ${offset + i + 1} in URI`);
    }
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `postgres[ql]://[user[:password]@][host][:port][/dbname][?key=value&...]` (one host). */
export function parseUri(uri: string): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = /^postgres(ql)?:\/\//.exec(uri)![0];
  let pos = prefix.length;
  const rest = uri.slice(pos);
  const end = rest.search(/[/?]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), pos);
    if (user) out.user = user;
    if (colon >= 0) out.password = decode(userinfo.slice(colon + 1), pos + colon + 1);
  }
  const hostStart = pos + at + 1;
  let hostport = authority.slice(at + 1);
  if (hostport.includes(',')) throw new UsageError('more than one host in URI: pgbb connects to one server');
  let host: string;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new UsageError(`missing "]" of the IPv6 host address that starts at position ${hostStart + 1} in URI`);
    host = hostport.slice(1, close);
    hostport = hostport.slice(close + 1);
    if (hostport && !hostport.startsWith(':')) throw new UsageError(`unexpected character at position ${hostStart + close + 2} in URI (expected ":" or "/" after the IPv6 address)`);
  } else {
    const colon = hostport.indexOf(':');
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    hostport = colon < 0 ? '' : hostport.slice(colon);
  }
  if (host) out.host = decode(host, hostStart);
  if (hostport) out.port = decode(hostport.slice(1), hostStart);
  pos += end < 0 ? rest.length : end;
  let query = '';
  if (uri[pos] === '/') {
    const q = uri.indexOf('?', pos);
    const db = decode(q < 0 ? uri.slice(pos + 1) : uri.slice(pos + 1, q), pos + 1);
    if (db) out.dbname = db;
    pos = q < 0 ? uri.length : q;
  }
  if (uri[pos] === '?') query = uri.slice(pos + 1);
  let qpos = pos + 1;
  for (const param of query ? query.split('&') : []) {
    const eq = param.indexOf('=');
    if (eq <= 0 || param.indexOf('=', eq + 1) >= 0) throw new UsageError(`invalid URI query parameter at position ${qpos + 1}: must be key=value`);
    let key = decode(param.slice(0, eq), qpos);
    let value = decode(param.slice(eq + 1), qpos + eq + 1);
    // As libpq: the JDBC spelling ssl=true means sslmode=require.
    if (key === 'ssl' && value === 'true') [key, value] = ['sslmode', 'require'];
    checkKeyword(key, value, 'URI query parameter');
    out[key] = value;
    qpos += param.length + 1;
  }
  return out;
}

/** Either form, to keyword → value. */
export function parseConninfo(conninfo: string): Record<string, string> {
  return /^postgres(ql)?:\/\//.test(conninfo) ? parseUri(conninfo) : parseKeywordValue(conninfo);
}
