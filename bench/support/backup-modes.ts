/**
 * The five ways of taking a backup the bench compares (issue 16's first
 * table), as argument lists for pgbb and for pg_basebackup. Every one uses
 * a fast checkpoint; each pair writes the same thing.
 */
import { join } from 'node:path';
import { DEBIAN_PG15_BIN } from '../../test/support/cluster';
import { PGBB_CLI } from '../../test/support/pgbb';

export const PG_BASEBACKUP = join(DEBIAN_PG15_BIN, 'pg_basebackup');

export interface Mode {
  key: string;
  /** The first column of the table. */
  label: string;
  /** Output goes to stdout (to /dev/null) rather than into the target directory. */
  stdout: boolean;
  pgbb(target: Target): string[];
  pgBasebackup(target: Target): string[];
}

export interface Target {
  conninfo: string;
  dir: string;
  /** -T OLD=NEW for a plain backup of a server with a tablespace; undefined without one. */
  tablespace?: { location: string; mapped: string };
}

const mapping = (t: Target): string[] => (t.tablespace ? ['-T', `${t.tablespace.location}=${t.tablespace.mapped}`] : []);

export const MODES: Mode[] = [
  {
    key: 'stdout',
    label: '`-D - -X fetch` → /dev/null',
    stdout: true,
    // pg_basebackup cannot stream WAL into a tar on stdout, hence -X fetch for both.
    pgbb: (t) => ['backup', '-d', t.conninfo, '-c', 'fast', '-X', 'fetch', '-D', '-'],
    pgBasebackup: (t) => ['-d', t.conninfo, '-c', 'fast', '-X', 'fetch', '-Ft', '-D', '-'],
  },
  {
    key: 'tar',
    label: '`-F tar -N` (`-X stream`)',
    stdout: false,
    pgbb: (t) => ['backup', '-d', t.conninfo, '-c', 'fast', '-F', 'tar', '-N', '-D', t.dir],
    pgBasebackup: (t) => ['-d', t.conninfo, '-c', 'fast', '-X', 'stream', '-Ft', '-N', '-D', t.dir],
  },
  {
    key: 'plain',
    label: 'plain `-N`',
    stdout: false,
    pgbb: (t) => ['backup', '-d', t.conninfo, '-c', 'fast', '-N', '-D', t.dir, ...mapping(t)],
    pgBasebackup: (t) => ['-d', t.conninfo, '-c', 'fast', '-X', 'stream', '-Fp', '-N', '-D', t.dir, ...mapping(t)],
  },
  {
    key: 'plain-fsync',
    label: 'plain, fsync',
    stdout: false,
    pgbb: (t) => ['backup', '-d', t.conninfo, '-c', 'fast', '-D', t.dir, ...mapping(t)],
    pgBasebackup: (t) => ['-d', t.conninfo, '-c', 'fast', '-X', 'stream', '-Fp', '-D', t.dir, ...mapping(t)],
  },
  {
    key: 'tar-zstd',
    label: 'tar + zstd level 1, 2 workers',
    stdout: false,
    pgbb: (t) => ['backup', '-d', t.conninfo, '-c', 'fast', '-F', 'tar', '-N', '--compress', 'zstd:level=1,workers=2', '-D', t.dir],
    pgBasebackup: (t) => [
      '-d', t.conninfo, '-c', 'fast', '-X', 'stream', '-Ft', '-N', '--compress', 'client-zstd:level=1,workers=2', '-D', t.dir,
    ],
  },
];

/** node + the built CLI, for measure(). */
export function pgbbCommand(args: string[], nodeFlags: string[] = []): [string, string[]] {
  return [process.execPath, [...nodeFlags, PGBB_CLI, ...args]];
}
