/**
 * `pgbb restore - -D …` (the built CLI) on crafted tar streams: links that
 * would lead writes out of the target, hostile modes, tablespaces placed
 * where the archive likes, backups missing their manifest, label or
 * pg_control. Each case either fails with one line naming what is wrong or
 * works safely; after each, a snapshot of the whole sandbox (names, types,
 * modes, content hashes) shows that nothing outside the target and the
 * tablespace locations the user named has changed.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BackupEvent } from '../../src/events';
import { runPgbb, type PgbbRun } from '../support/pgbb';
import { completeBackup, snapshotTree, streamOf } from '../support/hostile-backup';
import { dir, file, link } from '../support/synthetic-backup';
import { tinyPlainBackup } from '../support/hostile-files';

let root: string;
const RECORDED = '/srv/pgbb-hostile-ts';

before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pgbb-hostile-'));
  // Things an escape would touch.
  await fs.mkdir(join(root, 'victim'), { mode: 0o700 });
  await fs.writeFile(join(root, 'victim', 'authorized_keys'), 'ssh-ed25519 AAAA owner\n', { mode: 0o600 });
  await fs.mkdir(join(root, 'nonempty'));
  await fs.writeFile(join(root, 'nonempty', 'keep'), 'keep');
});
after(() => fs.rm(root, { recursive: true, force: true }));

interface Case {
  /** The case's own directory (exists before the run); the target is `<dir>/data`. */
  dir: string;
  target: string;
  r: PgbbRun;
}

/**
 * Restores `input` into `<root>/<name>/data`; asserts that nothing outside the
 * target and `allowed` (names in the case's directory, or absolute paths) changed.
 */
async function restore(name: string, input: Buffer, args: (c: { dir: string; target: string }) => string[], allowed: string[] = []): Promise<Case> {
  const dir = join(root, name);
  await fs.mkdir(dir);
  const target = join(dir, 'data');
  const skip = [target, ...allowed.map((a) => (a.startsWith('/') ? a : join(dir, a)))];
  const before = await snapshotTree(root, skip);
  const r = await runPgbb(['restore', '-', '-D', target, ...args({ dir, target })], { input });
  assert.deepEqual(await snapshotTree(root, skip), before, `${name}: nothing outside the target changed\n${r.stderr}`);
  return { dir, target, r };
}

/** -T for the synthetic backup's tablespace, into the case's `ts`. */
const mapTs = (c: { dir: string }) => ['-T', `${RECORDED}=${join(c.dir, 'ts')}`];

function refused(c: Case, pattern: RegExp): void {
  assert.equal(c.r.code, 1, c.r.stderr);
  assert.match(c.r.stderr, pattern);
  assert.equal(c.r.stderr.trimEnd().split('\n').length, 1, `one line: ${c.r.stderr}`);
  assert.match(c.r.stderr, /^pgbb: error: /);
  assert.ok(!existsSync(c.target), 'the target is removed');
}

/** Every mode below `dir`: no setuid/setgid/sticky, no write for group or others. */
async function assertSafeModes(dir: string): Promise<void> {
  for (const [rel, desc] of await snapshotTree(dir)) {
    const [type, mode] = desc.split(' ');
    if (type === 'link') continue;
    assert.equal(Number.parseInt(mode!, 8) & 0o7022, 0, `${rel}: mode ${mode}`);
  }
}

const backup = (opts: Parameters<typeof completeBackup>[0] = {}) => completeBackup({ tablespace: RECORDED, ...opts });

test('links the archive makes are never written through: a -> ., a/b -> .., b/x', async () => {
  const input = await streamOf(backup({ extra: [...link('a', '.'), ...link('a/b', '..'), ...file('b/x', Buffer.from('escaped'))] }));
  refused(await restore('dot-links', input, mapTs, ['ts']), /archive member "a" is a symbolic link \(to "\."\)/);
});

test('a link through the tablespace link: x -> pg_tblspc/16385/.., then x/evil', async () => {
  const events = backup();
  const end = events.findIndex((e) => e.type === 'end');
  // base again after the tablespace archive: by then pg_tblspc/16385 exists.
  const more: BackupEvent[] = [{ type: 'archive', kind: 'base', name: 'base', location: '' }, ...link('x', 'pg_tblspc/16385/..'), ...file('x/evil', Buffer.from('escaped')), { type: 'archive-end' }];
  events.splice(end, 0, ...more);
  refused(await restore('ts-link', await streamOf(events), mapTs, ['ts']), /archive member "x" is a symbolic link/);
});

test('a link anywhere else is refused, even one that stays inside', async () => {
  const input = await streamOf(backup({ extra: link('base/1/l', '../../global') }));
  refused(await restore('inside-link', input, mapTs, ['ts']), /archive member "base\/1\/l" is a symbolic link/);
});

test('a pg_wal link (WAL relocated on the server) is restored as a real directory', async () => {
  const input = await streamOf(backup({ drop: ['pg_wal', 'pg_wal/archive_status'], extra: [...link('pg_wal', join(root, 'wal-elsewhere')), ...dir('pg_wal/archive_status')] }));
  const c = await restore('wal-link', input, mapTs, ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  assert.ok((await fs.lstat(join(c.target, 'pg_wal'))).isDirectory());
  assert.ok((await fs.lstat(join(c.target, 'pg_wal', 'archive_status'))).isDirectory());
});

test('setuid, setgid and sticky bits and loose modes are not restored', async () => {
  const modes: Record<string, number> = { 'base/1/1259': 0o4755, PG_VERSION: 0o6777, base: 0o3777, global: 0o777 };
  const input = await streamOf(backup({ mode: (e) => modes[e.path] }));
  const c = await restore('setuid', input, mapTs, ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  assert.equal((await fs.stat(join(c.target, 'base/1/1259'))).mode & 0o7777, 0o600);
  assert.equal((await fs.stat(join(c.target, 'PG_VERSION'))).mode & 0o7777, 0o600);
  assert.equal((await fs.stat(join(c.target, 'base'))).mode & 0o7777, 0o700);
  await assertSafeModes(c.target);
  await assertSafeModes(join(c.dir, 'ts'));
});

test('restore -R: a 0666 postgresql.auto.conf holding the password comes out 0600', async () => {
  const input = await streamOf(backup({ extra: file('postgresql.auto.conf', Buffer.from('work_mem = 4MB\n'), 0o666) }));
  const c = await restore('autoconf', input, (c) => [...mapTs(c), '-R', '--primary-conninfo', 'host=primary user=rep password=s3cret'], ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  assert.ok(!c.r.stderr.includes('s3cret'));
  const conf = join(c.target, 'postgresql.auto.conf');
  assert.match(await fs.readFile(conf, 'utf8'), /password=s3cret/);
  assert.equal((await fs.stat(conf)).mode & 0o7777, 0o600);
});

test('a group-readable cluster comes back 0750/0640 (pgbb\'s own files too), the password file still 0600', async () => {
  const input = await streamOf(backup({ mode: (e) => (e.kind === 'directory' ? 0o750 : e.kind === 'file' ? 0o640 : undefined), extra: file('postgresql.auto.conf', Buffer.from(''), 0o666) }));
  const c = await restore('group', input, (c) => [...mapTs(c), '-R', '--primary-conninfo', 'password=s3cret'], ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  const mode = async (p: string) => (await fs.stat(join(c.target, p))).mode & 0o7777;
  assert.equal(await mode('.'), 0o750);
  assert.equal(await mode('global'), 0o750);
  assert.equal(await mode('PG_VERSION'), 0o640);
  assert.equal(await mode('backup_manifest'), 0o640);
  assert.equal(await mode('postgresql.auto.conf'), 0o600);
  assert.equal((await fs.stat(join(c.dir, 'ts'))).mode & 0o7777, 0o750);
  await assertSafeModes(c.target);
});

test('tablespaces go outside -D only where the user said', async (t) => {
  await t.test('unmapped, without the flag: refused, listing the location and both ways on', async () => {
    const crafted = join(root, 'victim', 'ts');
    const c = await restore('ts-unmapped', await streamOf(backup({ tablespace: crafted })), () => []);
    refused(c, new RegExp(`at "${crafted}" \\(16385\\): map each with -T OLD=NEW, or pass --tablespaces-at-recorded-locations`));
  });
  await t.test('-T: written at the mapped place only', async () => {
    const crafted = join(root, 'victim', 'ts');
    const c = await restore('ts-mapped', await streamOf(backup({ tablespace: crafted })), (c) => ['-T', `${crafted}=${join(c.dir, 'ts')}`], ['ts']);
    assert.equal(c.r.code, 0, c.r.stderr);
    assert.equal(await fs.readlink(join(c.target, 'pg_tblspc', '16385')), join(c.dir, 'ts'));
    assert.ok(existsSync(join(c.dir, 'ts', 'PG_15_202209061', '1', '16390')));
  });
  await t.test('--tablespaces-at-recorded-locations: written there, named first', async () => {
    const at = join(root, 'recorded-ts');
    const c = await restore('ts-flag', await streamOf(backup({ tablespace: at })), () => ['--tablespaces-at-recorded-locations'], [at]);
    assert.equal(c.r.code, 0, c.r.stderr);
    assert.match(c.r.stderr, new RegExp(`^pgbb: restoring tablespace 16385 at its recorded location "${at}"\n`));
    assert.ok(existsSync(join(at, 'PG_15_202209061', '1', '16390')));
  });
  const always: [string, (dir: string) => string, RegExp][] = [
    ['relative', () => 'relative/ts', /tablespace 16385's recorded location "relative\/ts" is not an absolute path/],
    ['inside-target', (d) => join(d, 'data', 'ts'), /tablespace 16385 would be written at ".*\/data\/ts", inside the data directory/],
    ['target-inside', (d) => d, /the data directory ".*" lies inside tablespace 16385's location/],
    ['non-empty', () => join(root, 'nonempty'), /directory ".*\/nonempty" exists but is not empty/],
  ];
  for (const [name, location, expected] of always) {
    await t.test(`always refused: ${name}`, async () => {
      const d = join(root, `ts-${name}`);
      const c = await restore(`ts-${name}`, await streamOf(backup({ tablespace: location(d) })), () => ['--tablespaces-at-recorded-locations']);
      refused(c, expected);
    });
  }
});

test('no manifest: refused unless --no-manifest, which says the files were not checked', async () => {
  const input = await streamOf(backup(), { manifest: false });
  refused(await restore('no-manifest', input, mapTs, ['ts']), /the backup has no backup_manifest, so its files cannot be checked: pass --no-manifest/);
  const c = await restore('no-manifest-ok', input, (c) => [...mapTs(c), '--no-manifest'], ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  assert.match(c.r.stderr, /^pgbb: warning: the backup has no backup_manifest: files were not checked$/m);
  assert.ok(existsSync(join(c.target, 'global', 'pg_control')));
});

test('no backup_label or no global/pg_control: refused, naming what is missing, nothing left', async () => {
  for (const [name, missing] of [['no-label', 'backup_label'], ['no-control', 'global/pg_control']] as const) {
    const input = await streamOf(backup({ drop: [missing] }));
    const c = await restore(name, input, (c) => [...mapTs(c), '--no-manifest'], ['ts']);
    refused(c, new RegExp(`the backup holds no ${missing}: it is not a complete base backup`));
    assert.ok(!existsSync(join(c.dir, 'ts')), 'the tablespace directory is removed too');
  }
});

test('a target inside the backup being read is refused: it would be read back as it is written, a copy of itself without end', async () => {
  const bk = tinyPlainBackup(join(root, 'self-source'));
  await fs.rm(join(bk, 'backup_manifest'));
  const ts = join(root, 'self-source-ts');
  await fs.mkdir(join(ts, 'PG_15_202209061'), { recursive: true });
  await fs.mkdir(join(bk, 'pg_tblspc'));
  await fs.symlink(ts, join(bk, 'pg_tblspc', '16385'));
  const elsewhere = join(root, 'self-elsewhere');
  const cases: [string, string[]][] = [
    ['-D inside the backup', ['-D', join(bk, 'base', 'new'), '-T', `${ts}=${join(elsewhere, 'ts1')}`]],
    ['-D inside its tablespace', ['-D', join(ts, 'new'), '-T', `${ts}=${join(elsewhere, 'ts2')}`]],
    ['-T inside the backup', ['-D', join(elsewhere, 'data3'), '-T', `${ts}=${join(bk, 'global', 'ts')}`]],
  ];
  for (const [name, args] of cases) {
    const before = await snapshotTree(root);
    const r = await runPgbb(['restore', bk, '--no-manifest', '-N', ...args], { timeoutMs: 30_000 });
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /^pgbb: error: .* lies inside the backup being restored/, name);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${name}, one line: ${r.stderr}`);
    assert.deepEqual(await snapshotTree(root), before, `${name}: nothing changed`);
  }
});

test('a file of a backup directory that its manifest does not list, or lists at another size, is refused at its entry, not written out first', async () => {
  const made = await restore('planted-source', await streamOf(backup()), mapTs, ['ts']);
  assert.equal(made.r.code, 0, made.r.stderr);
  const src = made.target;
  // Sparse 8 GiB: no disk to plant, 8 GiB written out before a check at the end would refuse them.
  const cases: [string, string, RegExp][] = [
    ['unlisted', 'base/1/planted', /"base\/1\/planted" is not in the manifest, refusing it before reading it/],
    ['resized', 'base/1/1259', /"base\/1\/1259" has size 8589934592 in the backup but \d+ in the manifest, refusing it before reading it/],
  ];
  for (const [name, rel, expected] of cases) {
    const planted = join(src, rel);
    const saved = existsSync(planted) ? await fs.readFile(planted) : null;
    await fs.writeFile(planted, '');
    await fs.truncate(planted, 8 * 1024 ** 3);
    const dir = join(root, `planted-${name}`);
    await fs.mkdir(dir);
    const target = join(dir, 'data');
    const r = await runPgbb(['restore', src, '-D', target, '-N', '-T', `${join(made.dir, 'ts')}=${join(dir, 'ts')}`], { timeoutMs: 120_000 });
    refused({ dir, target, r }, expected);
    if (saved) await fs.writeFile(planted, saved);
    else await fs.rm(planted);
  }
});

test('two restores racing for one target: one is refused, and it never removes what the other restored', async () => {
  const made = await restore('race-source', await streamOf(backup()), mapTs, ['ts']);
  assert.equal(made.r.code, 0, made.r.stderr);
  const want = await snapshotTree(made.target);
  want.delete('backup_manifest'); // written by each restore from the same bytes; compared below all the same
  for (let round = 0; round < 8; round++) {
    const dir = join(root, `race-${round}`);
    await fs.mkdir(dir);
    const target = join(dir, 'data');
    const args = (ts: string) => ['restore', made.target, '-D', target, '-N', '-T', `${join(made.dir, 'ts')}=${join(dir, ts)}`];
    const runs = await Promise.all([runPgbb(args('ts1')), runPgbb(args('ts2'))]);
    const ok = runs.filter((r) => r.code === 0);
    assert.ok(ok.length <= 1, `round ${round}: both succeeded`);
    for (const r of runs.filter((r) => r.code !== 0)) assert.match(r.stderr, /^pgbb: error: directory ".*" (is locked by another pgbb run|exists but is not empty)/, `round ${round}`);
    if (ok.length) {
      const got = await snapshotTree(target);
      got.delete('backup_manifest');
      // The tablespace link points at the winner's own tablespace directory.
      got.delete('pg_tblspc/16385');
      want.delete('pg_tblspc/16385');
      assert.deepEqual(got, want, `round ${round}: the winner's restore is whole`);
    }
  }
});

test('two restores racing for one tablespace directory: the loser never empties the winner\'s tablespace', async () => {
  const made = await restore('race-ts-source', await streamOf(backup()), mapTs, ['ts']);
  assert.equal(made.r.code, 0, made.r.stderr);
  const want = await snapshotTree(join(made.dir, 'ts'));
  for (let round = 0; round < 6; round++) {
    const dir = join(root, `race-ts-${round}`);
    await fs.mkdir(dir);
    const args = (data: string) => ['restore', made.target, '-D', join(dir, data), '-N', '-T', `${join(made.dir, 'ts')}=${join(dir, 'ts')}`];
    const runs = await Promise.all([runPgbb(args('data1')), runPgbb(args('data2'))]);
    assert.ok(runs.filter((r) => r.code === 0).length <= 1, `round ${round}: both succeeded`);
    for (const r of runs.filter((r) => r.code !== 0)) assert.match(r.stderr, /^pgbb: error: directory ".*\/ts" (is locked by another pgbb run|exists but is not empty)/, `round ${round}`);
    if (runs.some((r) => r.code === 0)) assert.deepEqual(await snapshotTree(join(dir, 'ts')), want, `round ${round}: the winner's tablespace is whole`);
  }
});

test('base members under a declared tablespace\'s pg_tblspc/<oid> are refused (they would go through its link); an undeclared, in-place one is base\'s own directory', async () => {
  // 16385 is the synthetic backup's declared tablespace: nothing may be written below its link but its own members
  // (in a stream, base's members under pg_tblspc/16385/ are read as that tablespace's, and it did not make the directory).
  const through = await streamOf(backup({ extra: file('pg_tblspc/16385/PG_15_202209061/planted', Buffer.from('x')) }));
  refused(await restore('ts-through', through, mapTs, ['ts']), /lies inside a tablespace link|"PG_15_202209061" is not a directory this run created/);
  assert.ok(!existsSync(join(root, 'ts-through', 'ts', 'PG_15_202209061', 'planted')));
  // 16999 is declared by none (allow_in_place_tablespaces): a directory of base, restored as such.
  const inPlace = await streamOf(backup({ extra: [...dir('pg_tblspc/16999'), ...dir('pg_tblspc/16999/PG_15_202209061'), ...file('pg_tblspc/16999/PG_15_202209061/f', Buffer.from('in place'))] }));
  const c = await restore('ts-in-place', inPlace, mapTs, ['ts']);
  assert.equal(c.r.code, 0, c.r.stderr);
  assert.equal(await fs.readFile(join(c.target, 'pg_tblspc/16999/PG_15_202209061/f'), 'utf8'), 'in place');
  assert.ok((await fs.lstat(join(c.target, 'pg_tblspc/16999'))).isDirectory());
});
