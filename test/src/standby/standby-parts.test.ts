/**
 * The standby command's parts that need no primary: the recovery block in
 * postgresql.auto.conf (replaced, not piled up), what a data directory is
 * judged to be, the seed, and finding server programs of one major version
 * (Debian's 15 and the embedded 17 are real candidates here).
 */
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { withRecoveryBlock, conninfoString } from '../../../src/codec/recovery-settings';
import { dataDirState } from '../../../src/standby/data-dir-state';
import { seedDataDirectory } from '../../../src/standby/seed';
import { findServerBinaries } from '../../../src/standby/pg-binaries';
import { writeRecoveryFiles } from '../../../src/standby/recovery-files';
import { primaryConninfo } from '../../../src/standby/primary-conninfo';
import { DEBIAN_PG15_BIN, embeddedBinDir } from '../../support/cluster';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const temp = async () => {
  const d = await mkdtemp(join(tmpdir(), 'pgbb-standby-unit-'));
  dirs.push(d);
  return d;
};

test('the recovery block replaces an earlier one and keeps everything else', () => {
  const first = withRecoveryBlock("work_mem = '8MB'\n", { primaryConninfo: "host=a user='o''k'", slot: 's1' });
  assert.equal(first, "work_mem = '8MB'\n# recovery settings added by pgbb\nprimary_conninfo = 'host=a user=''o''''k'''\nprimary_slot_name = 's1'\n");
  const second = withRecoveryBlock(`${first}max_connections = 20\n`, { primaryConninfo: 'host=b' });
  assert.equal(second, "work_mem = '8MB'\nmax_connections = 20\n# recovery settings added by pgbb\nprimary_conninfo = 'host=b'\n");
  assert.equal(withRecoveryBlock('', {}), '# recovery settings added by pgbb\n');
});

test('primary_conninfo keeps the connection settings but dbname and replication, quoting values', () => {
  const saved = process.env.PGPASSWORD;
  delete process.env.PGPASSWORD;
  try {
    assert.equal(primaryConninfo({ conninfo: "host=db1 port=5433 dbname=app user=rep password='a b' application_name=x" }), "host=db1 port=5433 user=rep application_name=x password='a b'");
    assert.equal(primaryConninfo({ host: '/var/run/postgresql', user: 'u' }), "host='/var/run/postgresql' user=u");
  } finally {
    if (saved !== undefined) process.env.PGPASSWORD = saved;
  }
  assert.equal(conninfoString({ a: "it's", b: 'c\\d' }), "a='it\\'s' b='c\\\\d'");
});

test('a data directory is judged without following links; a seed makes it an interrupted refresh', async () => {
  const base = await temp();
  assert.deepEqual(await dataDirState(join(base, 'none')), { kind: 'new', exists: false });
  await fs.mkdir(join(base, 'empty'));
  assert.deepEqual(await dataDirState(join(base, 'empty')), { kind: 'new', exists: true });
  await fs.symlink(join(base, 'empty'), join(base, 'link'));
  assert.equal((await dataDirState(join(base, 'link'))).kind, 'other');
  await fs.mkdir(join(base, 'files'));
  await fs.writeFile(join(base, 'files', 'x'), '');
  assert.deepEqual(await dataDirState(join(base, 'files')), { kind: 'other', why: 'it is not empty and holds no PG_VERSION' });

  const d = join(base, 'seeded');
  await seedDataDirectory(d, 15, false);
  assert.deepEqual((await fs.readdir(d)).sort(), ['PG_VERSION', 'global', 'pgbb_refresh_incomplete']);
  assert.equal(await fs.readFile(join(d, 'PG_VERSION'), 'utf8'), '15\n');
  assert.equal(statSync(d).mode & 0o777, 0o700);
  assert.deepEqual(await dataDirState(d), { kind: 'incomplete' });
  await seedDataDirectory(d, 15, false); // again (a seed cut off): the same, nothing doubled
  assert.equal(await fs.readFile(join(d, 'PG_VERSION'), 'utf8'), '15\n');

  // A planted link where PG_VERSION goes is never written through.
  const planted = join(base, 'planted');
  await fs.mkdir(planted);
  await fs.writeFile(join(base, 'victim'), 'keep');
  await fs.symlink(join(base, 'victim'), join(planted, 'PG_VERSION'));
  await seedDataDirectory(planted, 15, false);
  assert.equal(await fs.readFile(join(base, 'victim'), 'utf8'), 'keep');
});

test('recovery files: 0600, never through a planted link', async () => {
  const d = await temp();
  await fs.writeFile(join(d, 'postgresql.auto.conf'), "x = 1\n", { mode: 0o644 });
  await writeRecoveryFiles(d, { primaryConninfo: 'host=p password=secret', slot: 's' }, false);
  assert.equal(statSync(join(d, 'postgresql.auto.conf')).mode & 0o777, 0o600);
  assert.match(await fs.readFile(join(d, 'postgresql.auto.conf'), 'utf8'), /^x = 1\n# recovery settings added by pgbb\nprimary_conninfo = 'host=p password=secret'\n/);
  assert.equal(statSync(join(d, 'standby.signal')).size, 0);

  const e = await temp();
  await fs.writeFile(join(e, 'victim'), 'keep');
  await fs.symlink(join(e, 'victim'), join(e, 'standby.signal'));
  await assert.rejects(writeRecoveryFiles(e, {}, false), /standby\.signal" is a symbolic link/);
  assert.equal(await fs.readFile(join(e, 'victim'), 'utf8'), 'keep');
});

test('server programs are found for the major asked, and a wrong one says what was tried', () => {
  assert.equal(findServerBinaries(15, DEBIAN_PG15_BIN).dir, DEBIAN_PG15_BIN);
  const seventeen = embeddedBinDir();
  assert.match(findServerBinaries(17, seventeen).version, /^17\./);
  assert.throws(() => findServerBinaries(17, DEBIAN_PG15_BIN), /no PostgreSQL 17 server programs found \(tried .*PostgreSQL 15\).*--pg-bin/);
});

test('without --pg-bin: pg_ctl on PATH first, then pg_config --bindir, then Debian\'s layout', () => {
  const saved = process.env.PATH;
  try {
    // Only PATH can yield a 17 here: pg_config and Debian's layout are 15's.
    process.env.PATH = `${embeddedBinDir()}:${saved}`;
    assert.deepEqual([findServerBinaries(17).dir, findServerBinaries(17).from], [embeddedBinDir(), 'PATH']);
    // Debian keeps pg_ctl off PATH (/usr/bin has pg_ctlcluster) and pg_config on it.
    process.env.PATH = '/usr/bin';
    assert.deepEqual([findServerBinaries(15).dir, findServerBinaries(15).from], [DEBIAN_PG15_BIN, 'pg_config --bindir']);
    process.env.PATH = '/nonexistent';
    assert.deepEqual([findServerBinaries(15).dir, findServerBinaries(15).from], [DEBIAN_PG15_BIN, 'Debian layout']);
  } finally {
    process.env.PATH = saved;
  }
});
