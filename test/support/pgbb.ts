/**
 * Runs the built `pgbb` command as a child process, the way a user would:
 * exit code, stdout (or a file it goes to) and stderr.
 */
import { spawn } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { join } from 'node:path';

export const PGBB_CLI = join(__dirname, '..', '..', 'src', 'cli.js');
/** Poisons recycled read memory in every run (./slab-poison.ts). */
const POISON = join(__dirname, 'slab-poison.js');

export interface PgbbRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runPgbb(
  args: string[],
  opts: {
    stdoutFile?: string;
    /** stdout is this file itself (opened for writing), not a pipe to it, as `pgbb … > FILE` in a shell. */
    stdoutTo?: string;
    env?: NodeJS.ProcessEnv;
    input?: Buffer;
    timeoutMs?: number;
  } = {},
): Promise<PgbbRun> {
  return new Promise((resolve, reject) => {
    const outFd = opts.stdoutTo ? openSync(opts.stdoutTo, 'w') : null;
    const child = spawn(process.execPath, ['-r', POISON, PGBB_CLI, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', outFd ?? 'pipe', 'pipe'],
    });
    if (outFd !== null) closeSync(outFd);
    let stdout = '';
    let stderr = '';
    // The file must be complete on disk before the caller reads it.
    let written: Promise<void> = Promise.resolve();
    if (opts.stdoutFile) {
      const out = createWriteStream(opts.stdoutFile);
      written = new Promise((res, rej) => out.on('finish', () => res()).on('error', rej));
      child.stdout!.pipe(out);
    } else child.stdout?.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      written.then(() => resolve({ code, signal, stdout, stderr }), reject);
    });
    // A child that fails early stops reading its stdin: that is its answer, not ours.
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input);
  });
}
