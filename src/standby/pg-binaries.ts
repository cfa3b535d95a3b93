/**
 * Where `pgbb standby` finds the server's programs (pg_ctl and postgres) of
 * the primary's major version, in this order: `--pg-bin DIR`; `pg_ctl` on
 * PATH; `pg_config --bindir`; Debian's /usr/lib/postgresql/<major>/bin. A
 * candidate counts only when its `pg_ctl --version` is of that major: a
 * PostgreSQL 15 pg_ctl cannot start a 17 data directory.
 *
 * Errors: PgbbError 'pg_bin' listing what was tried and why each was passed
 * over (and asking for --pg-bin).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import { PgbbError } from '../errors';

export interface ServerBinaries {
  dir: string;
  pgCtl: string;
  /** `pg_ctl --version`'s version text, e.g. "15.18". */
  version: string;
  /** Where it was found: '--pg-bin', 'PATH', 'pg_config --bindir' or 'Debian layout'. */
  from: string;
}

function run(file: string, args: string[]): string | null {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? r.stdout.trim() : null;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directories holding `pg_ctl` on PATH, in PATH's order. */
function onPath(): string[] {
  return (process.env.PATH ?? '')
    .split(':')
    .filter((d) => d && path.isAbsolute(d) && executable(path.join(d, 'pg_ctl')));
}

export function findServerBinaries(major: number, pgBin?: string): ServerBinaries {
  const candidates: Array<{ dir: string; from: string }> = [];
  if (pgBin !== undefined) candidates.push({ dir: path.resolve(pgBin), from: '--pg-bin' });
  else {
    for (const dir of onPath()) candidates.push({ dir, from: 'PATH' });
    const bindir = run('pg_config', ['--bindir']);
    if (bindir) candidates.push({ dir: bindir, from: 'pg_config --bindir' });
    candidates.push({ dir: `/usr/lib/postgresql/${major}/bin`, from: 'Debian layout' });
  }
  const passed: string[] = [];
  for (const c of candidates) {
    const pgCtl = path.join(c.dir, 'pg_ctl');
    if (!executable(pgCtl) || !executable(path.join(c.dir, 'postgres'))) {
      passed.push(`${c.dir} (${c.from}): no pg_ctl and postgres there`);
      continue;
    }
    const out = run(pgCtl, ['--version']);
    const m = out ? /\(PostgreSQL\)\s+(\d+)(\.\d+)?/.exec(out) : null;
    if (!m) {
      passed.push(`${c.dir} (${c.from}): pg_ctl --version did not run`);
      continue;
    }
    if (Number(m[1]) !== major) {
      passed.push(`${c.dir} (${c.from}): PostgreSQL ${m[1]}`);
      continue;
    }
    return { dir: c.dir, pgCtl, version: `${m[1]}${m[2] ?? ''}`, from: c.from };
  }
  throw new PgbbError('pg_bin', `no PostgreSQL ${major} server programs found (tried ${passed.join('; ')}): give their directory with --pg-bin`);
}
