/**
 * Child processes for the PostgreSQL test harness, run either as ourselves or
 * as the `postgres` OS user.
 *
 * In:  a program path and an argument array (never a shell string), options.
 * Out: `{ stdout, stderr }` once the program exits with status 0.
 * Errors: `CommandError` naming the command line, exit status or signal, and
 *   the program's stderr (stdout if stderr is empty).
 *
 * Why a `postgres` user at all: initdb and the postmaster refuse to run as
 * root. When we are root, `asPostgres` wraps the program in
 * `runuser -u postgres --`; when we are not root we already are an ordinary
 * user, so programs run directly and nothing is chowned.
 */

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const POSTGRES_USER = 'postgres';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface RunOptions {
  /** Run as the postgres OS user when we are root. */
  asPostgres?: boolean;
  /** Extra environment on top of process.env. */
  env?: NodeJS.ProcessEnv;
  /** Working directory; defaults to os.tmpdir() so postgres can always enter it. */
  cwd?: string;
  /** Kill the program (SIGKILL) after this long; 0 means no limit. */
  timeoutMs?: number;
}

export class CommandError extends Error {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(message: string, stdout: string, stderr: string, exitCode: number | null, cause: unknown) {
    super(message, { cause });
    this.name = 'CommandError';
    this.stdout = stdout;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/** The argv actually executed, with the runuser wrapper when needed. */
export function commandLine(cmd: string, args: string[], asPostgres = false): [string, string[]] {
  if (asPostgres && isRoot()) return ['runuser', ['-u', POSTGRES_USER, '--', cmd, ...args]];
  return [cmd, args];
}

export function describeCommand(cmd: string, args: string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const [file, argv] = commandLine(cmd, args, opts.asPostgres);
  const shown = describeCommand(cmd, args) + (file === 'runuser' ? ' (as postgres)' : '');
  return new Promise((resolve, reject) => {
    execFile(
      file,
      argv,
      {
        cwd: opts.cwd ?? tmpdir(),
        env: { ...process.env, ...opts.env },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 0,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: unknown; signal?: string | null; killed?: boolean };
        const status = typeof e.code === 'number' ? `exit ${e.code}` : e.signal ? `signal ${e.signal}` : String(e.code ?? e.message);
        const detail = (stderr || stdout || e.message).trim();
        reject(
          new CommandError(
            `${shown} failed (${status}${e.killed ? ', timed out' : ''}): ${detail}`,
            stdout,
            stderr,
            typeof e.code === 'number' ? e.code : null,
            err,
          ),
        );
      },
    );
  });
}

/** chown -R to postgres:postgres; a no-op when we are not root (we then own our files). */
export async function chownToPostgres(path: string, recursive = true): Promise<void> {
  if (!isRoot()) return;
  await run('chown', [...(recursive ? ['-R'] : []), `${POSTGRES_USER}:${POSTGRES_USER}`, '--', path]);
}

/**
 * A new empty directory under os.tmpdir() that the server's OS user owns.
 * Use it as the target when restoring a backup you mean to start: mkdtemp
 * makes 0700 directories, and one owned by root would stop postgres from
 * reaching anything inside.
 */
export async function makeTempDir(prefix = 'pgbb-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chownToPostgres(dir, false);
  return dir;
}

/**
 * A new empty directory more than 100 bytes deep under `root` (past tar's
 * name and link fields), every level traversable by the server's OS user.
 */
export async function deepDir(root: string, name: string): Promise<string> {
  const dir = join(root, 'd'.repeat(50), 'e'.repeat(50), name);
  await mkdir(dir, { recursive: true });
  await chownToPostgres(join(root, 'd'.repeat(50)));
  if (Buffer.byteLength(dir) <= 100) throw new Error(`deepDir: ${dir} is not past 100 bytes`);
  return dir;
}
