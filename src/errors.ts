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

/** The run was interrupted (SIGINT/SIGTERM or an AbortSignal). */
export class InterruptedError extends PgbbError {
  constructor(message = 'interrupted') {
    super('interrupted', message);
  }
}

/** An IoError naming the operation and the file, with the system's reason. */
export function ioError(what: string, file: string, cause: unknown): IoError {
  const e = cause as NodeJS.ErrnoException;
  const reason = e?.code === 'ENOSPC' ? 'no space left on device' : e?.message ?? String(cause);
  return new IoError(`${what} "${file}": ${reason}`, { cause });
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
