/**
 * Every error pgbb raises: one base class with a stable `code` for scripts
 * (`--json` error events carry it), `cause` kept, and a message that names the
 * file, block, object or setting at fault. Messages never carry secrets.
 */

export class PgbbError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Could not reach or lost the server. */
export class ConnectionError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('connection', message, options);
  }
}

/** The server rejected our credentials or role. */
export class AuthError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('auth', message, options);
  }
}

/** The server answered with an error or something the protocol does not allow. */
export class ProtocolError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('protocol', message, options);
  }
}

/** An error reported by the server itself (ErrorResponse), with its SQLSTATE. */
export class ServerError extends PgbbError {
  readonly sqlstate: string | undefined;
  constructor(message: string, sqlstate?: string, code = 'server', options?: { cause?: unknown }) {
    super(code, message, options);
    this.sqlstate = sqlstate;
  }
}

/** A tar archive is malformed or truncated. */
export class TarFormatError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('tar_format', message, options);
  }
}

/** A command-line option or library option is invalid. */
export class UsageError extends PgbbError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** The target directory is not empty (or not usable) and pgbb will not touch it. */
export class TargetNotEmptyError extends PgbbError {
  constructor(path: string) {
    super('target_not_empty', `directory "${path}" exists but is not empty`);
  }
}

/**
 * Another pgbb run holds the target (its lock file is in the directory).
 * Refused before the server is contacted; the directory is left as it is.
 */
export class TargetLockedError extends PgbbError {
  constructor(path: string, holder: string) {
    super('target_locked', `directory "${path}" is locked by another pgbb run (${holder})`);
  }
}

/** A filesystem operation failed; the message names the path. */
export class IoError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('io', message, options);
  }
}

/** Data does not match its checksum (page checksum, manifest CRC, ...). */
export class ChecksumError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('checksum', message, options);
  }
}

/** A manifest is malformed or disagrees with the backup. */
export class ManifestError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('manifest', message, options);
  }
}

/** The run was interrupted (SIGINT/SIGTERM or an AbortSignal); `signal` names the signal, if any. */
export class InterruptedError extends PgbbError {
  readonly signal: NodeJS.Signals | undefined;
  constructor(message = 'interrupted', signal?: NodeJS.Signals) {
    super('interrupted', message);
    this.signal = signal;
  }
}

/** What the C library says for the errors a backup meets, lowercase, as PostgreSQL's tools print them. */
const SYSTEM_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file exists',
  EPIPE: 'broken pipe',
  ECONNRESET: 'connection reset by peer',
  // TCP keepalives or retransmissions gave up: the host or the network is gone.
  ETIMEDOUT: 'connection timed out',
};

/**
 * The reason part of a system error: "no space left on device" rather than
 * Node's "ENOSPC: no space left on device, write" (which repeats the path
 * and the call the message already names).
 */
export function systemReason(cause: unknown): string {
  const e = cause as NodeJS.ErrnoException;
  if (e?.code && SYSTEM_REASONS[e.code]) return SYSTEM_REASONS[e.code];
  if (e instanceof PgbbError) return e.message;
  const msg = e?.message ?? String(cause);
  // "CODE: reason, syscall 'path'" → "reason"
  const m = /^[A-Z][A-Z0-9_]+: (.*?)(?:, \w+(?: '.*')?)?$/.exec(msg);
  return m ? m[1] : msg;
}

/** An IoError naming the operation and the file, with the system's reason. */
export function ioError(what: string, file: string, cause: unknown): IoError {
  return new IoError(`${what} "${file}": ${systemReason(cause)}`, { cause });
}

/**
 * A system error that reached the top unwrapped (a module pgbb loads when a
 * command needs it, opened under a low `ulimit -n`) as an IoError naming the
 * call and the file, so that it reads as every other I/O failure and scripts
 * see code "io", not "internal".
 */
export function asPgbbError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof PgbbError || !(err instanceof Error) || typeof e.syscall !== 'string' || typeof e.code !== 'string') return err;
  return e.path ? ioError(`could not ${e.syscall}`, e.path, err) : new IoError(`system call ${e.syscall} failed: ${systemReason(err)}`, { cause: err });
}

/** One line for humans: the message, plus the cause's when it adds something. */
export function describeError(err: unknown): string {
  if (err instanceof PgbbError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** Compressed data is corrupt, truncated or not in the expected format (zstd, ...). */
export class CompressionError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('compression', message, options);
  }
}

/** A tablespace would go where pgbb must not write it: unmapped by the user, relative, nested in the target or in another tablespace. */
export class TablespaceLocationError extends PgbbError {
  constructor(message: string) {
    super('tablespace_location', message);
  }
}

/** A backup lacks what a restore needs (backup_label, global/pg_control, backup_manifest). */
export class IncompleteBackupError extends PgbbError {
  constructor(message: string) {
    super('incomplete_backup', message);
  }
}

/** An encrypted archive or object could not be decrypted: wrong key, truncated, or tampered with. */
export class DecryptionError extends PgbbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('decrypt', message, options);
  }
}
