/**
 * TLS as libpq does it: `sslmode` → the connection attempts to make, in order.
 *
 *   disable      plain only
 *   allow        plain, then TLS if the server refused the plain connection
 *   prefer       (default) TLS, then plain if the server refuses SSL or TLS fails
 *   require      TLS without verification — but, as libpq, when the root
 *                certificate file exists the chain is checked (verify-ca)
 *   verify-ca    TLS, chain checked against sslrootcert, any host name
 *   verify-full  TLS, chain and host name (`host`, not `hostaddr`) checked
 *
 * sslrootcert (PGSSLROOTCERT) defaults to ~/.postgresql/root.crt; `system`
 * means the system's trusted roots and requires verify-full. A client
 * certificate is sent when sslcert (PGSSLCERT, default
 * ~/.postgresql/postgresql.crt) exists, with sslkey (PGSSLKEY, default
 * ~/.postgresql/postgresql.key), which must not be readable by others.
 * Over a Unix socket TLS is never used, whatever sslmode says (as libpq).
 * Certificate and key files are configuration the user names, so a link is
 * followed as libpq follows it (root.crt → /etc/ssl/… is common); the file
 * it leads to is read with readLimitedSync (regular files only, never
 * blocking on a FIFO, capped).
 *
 * retryWith says when libpq makes the next attempt; tlsReason words a TLS
 * failure for the error line.
 *
 * Errors: UsageError for a bad value; ConnectionError for a missing root
 * certificate that verification needs, or an unusable key file.
 */
import { realpathSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions as TlsConnectionOptions, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { ConnectionError, UsageError } from '../errors';
import { readLimitedSync, type ReadLimits } from '../io/read-limited';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsPlan {
  mode: SslMode;
  /** What to try, in order: false for a plain connection, else tls.connect's options. */
  attempts: (false | TlsConnectionOptions)[];
}

export interface TlsSettings {
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslpassword?: string;
  sslsni?: string;
  ssl_min_protocol_version?: string;
  ssl_max_protocol_version?: string;
}

const CERT_LIMIT = 16 * 1024 * 1024;
const PROTOCOLS: Record<string, TlsConnectionOptions['minVersion']> = { TLSv1: 'TLSv1', 'TLSv1.1': 'TLSv1.1', 'TLSv1.2': 'TLSv1.2', 'TLSv1.3': 'TLSv1.3' };

function protocol(key: string, value: string | undefined): TlsConnectionOptions['minVersion'] {
  if (value === undefined || value === '') return undefined;
  const v = PROTOCOLS[value];
  if (!v) throw new UsageError(`invalid ${key} value "${value}" (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)`);
  return v;
}

/**
 * The attempts for a connection to `host` (the name certificates are checked
 * against; a path means a Unix socket) in the settings' sslmode.
 */
export function tlsPlan(s: TlsSettings, host: string, home: string): TlsPlan {
  const system = s.sslrootcert === 'system';
  const modeText = s.sslmode || (system ? 'verify-full' : 'prefer');
  if (!(SSL_MODES as readonly string[]).includes(modeText)) throw new UsageError(`invalid sslmode value "${modeText}"`);
  const mode = modeText as SslMode;
  if (system && mode !== 'verify-full') throw new UsageError(`weak sslmode "${mode}" may not be used with sslrootcert=system (use "verify-full")`);
  const minVersion = protocol('ssl_min_protocol_version', s.ssl_min_protocol_version) ?? 'TLSv1.2';
  const maxVersion = protocol('ssl_max_protocol_version', s.ssl_max_protocol_version);
  if (mode === 'disable' || host.startsWith('/')) return { mode, attempts: [false] };

  const pgDir = join(home, '.postgresql');
  const rootFile = s.sslrootcert || join(pgDir, 'root.crt');
  const ca = system ? null : readUserFile(rootFile, { maxBytes: CERT_LIMIT, what: 'root certificate file' });
  if (!system && !ca && (mode === 'verify-ca' || mode === 'verify-full')) {
    throw new ConnectionError(
      `root certificate file "${rootFile}" does not exist: provide it (sslrootcert), use the system's trusted roots with sslrootcert=system, or choose an sslmode that does not verify the server (require)`,
    );
  }
  const tls: TlsConnectionOptions = {
    minVersion,
    ...(maxVersion ? { maxVersion } : {}),
    // As libpq: a root certificate that exists is used, whatever the mode.
    rejectUnauthorized: system || ca !== null,
    ...(ca ? { ca } : {}),
    checkServerIdentity: mode === 'verify-full' ? hostCheck(host) : () => undefined,
    ...(isIP(host) === 0 && s.sslsni !== '0' ? { servername: host } : {}),
    ...clientCertificate(s, pgDir),
  };
  const attempts: TlsPlan['attempts'] = mode === 'allow' ? [false, tls] : mode === 'prefer' ? [tls, false] : [tls];
  return { mode, attempts };
}

/** verify-full: the certificate must name `host` (DNS or IP subject alternative name, else CN). */
function hostCheck(host: string): (servername: string, cert: PeerCertificate) => Error | undefined {
  return (_servername, cert) => {
    if (!checkServerIdentity(host, cert)) return undefined;
    const names = cert.subjectaltname || (cert.subject?.CN ? `CN=${cert.subject.CN}` : 'no name');
    return Object.assign(new Error(`server certificate for "${names}" does not match host name "${host}"`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  };
}

function clientCertificate(s: TlsSettings, pgDir: string): Pick<TlsConnectionOptions, 'cert' | 'key' | 'passphrase'> {
  const certFile = s.sslcert || join(pgDir, 'postgresql.crt');
  const cert = readUserFile(certFile, { maxBytes: CERT_LIMIT, what: 'client certificate file' });
  if (!cert) return {};
  const keyFile = s.sslkey || join(pgDir, 'postgresql.key');
  const st = statSafe(keyFile);
  // As libpq: a key others can read is refused (0640 only when root owns it, for a shared group).
  if (st && (st.uid === 0 ? st.mode & 0o037 : st.mode & 0o077)) {
    throw new ConnectionError(`private key file "${keyFile}" has group or world access; it must be 0600 or less (0640 if owned by root)`);
  }
  const key = readUserFile(keyFile, { maxBytes: CERT_LIMIT, what: 'private key file' });
  if (!key) throw new ConnectionError(`certificate present, but not private key file "${keyFile}"`);
  return { cert, key, ...(s.sslpassword ? { passphrase: s.sslpassword } : {}) };
}

/**
 * A file the user's configuration names (certificate, key, password file):
 * links resolved first, then read as readLimitedSync reads; null when missing.
 */
export function readUserFile(file: string, limits: ReadLimits): Buffer | null {
  let real: string;
  try {
    real = realpathSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    real = file; // let readLimitedSync say what is wrong
  }
  return readLimitedSync(real, limits);
}

function statSafe(file: string): { mode: number; uid: number } | null {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

/**
 * Whether libpq would try again with `next` after `err`: with a plain
 * connection (prefer) after the server refused SSL, TLS failed, or the server
 * refused the TLS connection; with TLS (allow) after the server refused the
 * plain one. Not after a failure to reach the server at all.
 */
export function retryWith(next: boolean | object, err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const serverRefused = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && !e.code.startsWith('E');
  if (next !== false) return serverRefused;
  if (serverRefused) return true;
  return e.message === NO_SSL || e.message === SSL_ERROR || /^(ERR_SSL_|ERR_TLS_)/.test(e.code ?? '') || isCertificateError(e.code);
}

/** pg's words for a server that answers an SSLRequest with 'N', or with anything but 'S'. */
const NO_SSL = 'The server does not support SSL connections';
const SSL_ERROR = 'There was an error establishing an SSL connection';

/** OpenSSL's verification failures, as Node names them (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, …). */
function isCertificateError(code: string | undefined): boolean {
  return !!code && /^(UNABLE_TO_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_TLS_CERT)/.test(code);
}

/** A TLS failure in words a DBA knows from libpq. */
export function tlsReason(code: string | undefined, reason: string): string {
  if (reason === NO_SSL) return 'server does not support SSL, but SSL was required (sslmode)';
  if (isCertificateError(code) && !reason.startsWith('server certificate')) return `server certificate not accepted: ${reason}`;
  return reason;
}
