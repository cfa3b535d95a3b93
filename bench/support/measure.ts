/**
 * Measured runs of pgbb, pg_basebackup or anything else: wall time, CPU
 * seconds, peak RSS and bytes written by the kernel, through measured-child
 * (see there for how each is counted).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { syncAll } from './scratch';

export interface Sample {
  wall: number;
  /** user + sys of the command and its descendants. */
  cpu: number;
  maxRssKb: number;
  /** Bytes the kernel had to send to storage (write_bytes): whole dirtied folios. */
  writeBytes: number;
  /** Bytes handed to write calls on any descriptor (wchar): exact. */
  writeCallBytes: number;
  stderr: string;
}

const WRAPPER = join(__dirname, 'measured-child.js');

/** Runs cmd args (stdout to a file, default /dev/null; `env` added to this process's) after a `sync`; rejects on a non-zero exit. */
export function measure(cmd: string, args: string[], opts: { stdoutTo?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Sample> {
  syncAll(); // nothing dirty from an earlier run gets flushed on this one's time
  return new Promise((resolve, reject) => {
    const out = openSync(opts.stdoutTo ?? '/dev/null', 'w');
    const child = spawn(process.execPath, [WRAPPER, cmd, ...args], { stdio: ['ignore', out, 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    closeSync(out);
    let stderr = '';
    let report = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdio[3]!.on('data', (d) => (report += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let r: { wall: number; user: number; sys: number; maxRssKb: number; writeBytes: number; writeCallBytes: number } | undefined;
      try {
        r = JSON.parse(report);
      } catch {
        r = undefined;
      }
      if (code !== 0 || !r) {
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        return reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${tail}`));
      }
      resolve({ wall: r.wall, cpu: r.user + r.sys, maxRssKb: r.maxRssKb, writeBytes: r.writeBytes, writeCallBytes: r.writeCallBytes, stderr });
    });
  });
}
