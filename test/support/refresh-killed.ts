/**
 * The crash tests' refresh (test/integration/refresh*.test.ts): the library's
 * refreshCommand with an `onStep` that SIGKILLs this process at one step, so
 * that the shipped CLI needs no test hook at all.
 *
 *   node dist/test/support/refresh-killed.js AT CONNINFO DIR [--no-sync]
 *
 * AT: `write:N` (the Nth data write), remove, control, map, manifest or
 * marker (before that commit step). Otherwise it refreshes as `pgbb refresh
 * -d CONNINFO -D DIR -c fast` would; a refresh that ends without being
 * killed exits 3, so a test can tell it never reached AT.
 */
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { refreshCommand } from '../../src/commands/refresh';
import { describeError } from '../../src/errors';
import type { PgbbRun } from './pgbb';

type Step = 'write' | 'remove' | 'control' | 'map' | 'manifest' | 'marker';

export function killAt(spec: string): (step: Step) => void {
  const [at, n] = spec.split(':');
  let writes = 0;
  return (step) => {
    if (step !== at) return;
    if (step === 'write' && ++writes < Number(n ?? 1)) return;
    process.kill(process.pid, 'SIGKILL');
  };
}

/** Runs this driver as a child process, like runPgbb runs the CLI. */
export function runKilledRefresh(at: string, conninfo: string, dir: string, opts: { sync?: boolean } = {}): Promise<PgbbRun> {
  return new Promise((resolve, reject) => {
    const args = [join(__dirname, 'refresh-killed.js'), at, conninfo, dir, ...(opts.sync === false ? ['--no-sync'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const [at, conninfo, target, ...rest] = argv;
  try {
    await refreshCommand({
      connection: { conninfo },
      target,
      checkpoint: 'fast',
      label: 'pgbb base backup',
      tablespaceMapping: {},
      wal: 'stream',
      sync: !rest.includes('--no-sync'),
      manifest: true,
      verifyChecksums: true,
      onStep: killAt(at),
    });
  } catch (err) {
    process.stderr.write(`refresh-killed: error: ${describeError(err)}\n`);
    process.exit(1);
  }
  process.stderr.write(`refresh-killed: the refresh completed without reaching ${at}\n`);
  process.exit(3);
}

if (require.main === module) void main(process.argv.slice(2));
