/**
 * Authentication and the `--json` error codes against a real PostgreSQL 15
 * whose pg_hba.conf asks role `bob` for a SCRAM password over TCP (the
 * harness's trust lines stay for `postgres`), with max_wal_senders = 2.
 *
 * Passwords: a wrong or missing one fails with code `auth` in one line; the
 * right one works from the conninfo, PGPASSWORD and a .pgpass file, and
 * appears nowhere — stdout, stderr, --json events, or any file of the backup.
 * The code table: one failure per stable code, each a single JSON error
 * event and the exit status scripts expect.
 *
 * Nothing is masked after the fact: roles without REPLICATION whose
 * passwords are `p` and a long one get the server's "must be superuser or
 * replication role" intact (masking made it "su********eruser"), and the
 * long password is in no line, event or file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from 'pg';
import { Cluster, makeTempDir } from '../support/cluster';
import { run } from '../support/run';
import { DEBIAN_PG15_BIN } from '../support/cluster';
import { backupStreaming, jsonError, jsonEvents, reapChildren, serverClean, spawnPgbb, waitFor } from '../support/failure-helpers';
import { LOCK_FILE } from '../../src/io/target-lock';
import { PGBB_CLI } from '../support/pgbb';

/** A colon and a space: both need escaping in .pgpass or quoting in a conninfo. */
const PASSWORD = 'pw:Secret 42';
/** Roles that may log in but not replicate: one with a one-letter password, one with a long one. */
const SHORT = 'p';
const LONG = `Long-Secret-${'x7'.repeat(60)}`;
let cluster: Cluster;
let root: string;
let home: string;

before(async () => {
  cluster = await Cluster.create({ conf: { max_wal_senders: 2, password_encryption: 'scram-sha-256' } });
  root = await makeTempDir('pgbb-fail-auth-');
  home = join(root, 'home');
  await fs.mkdir(home);
  const hba = join(cluster.dataDir, 'pg_hba.conf');
  // First match wins: bob over TCP needs a password, everyone else keeps the harness's trust.
  const trust = await fs.readFile(hba, 'utf8');
  const scram = ['bob', 'carol', 'dave'].map((u) => `host all ${u} 127.0.0.1/32 scram-sha-256\nhost replication ${u} 127.0.0.1/32 scram-sha-256\n`).join('');
  await fs.writeFile(hba, `${scram}${trust}`);
  await cluster.query(`CREATE ROLE bob LOGIN REPLICATION PASSWORD '${PASSWORD.replace(/'/g, "''")}'`);
  await cluster.query(`CREATE ROLE carol LOGIN PASSWORD '${SHORT}'`);
  await cluster.query(`CREATE ROLE dave LOGIN PASSWORD '${LONG}'`);
  await cluster.query('SELECT pg_reload_conf()');
});

after(async () => {
  await reapChildren();
  await cluster?.destroy();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

function bob(extra = ''): string[] {
  return ['-d', `host=${cluster.host} port=${cluster.port} user=bob ${extra}`.trim()];
}

/** Every file below dir whose bytes contain s (symlinks not followed). */
async function filesContaining(dir: string, s: string): Promise<string[]> {
  const found: string[] = [];
  const needle = Buffer.from(s);
  for (const ent of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const p = join(ent.parentPath ?? (ent as unknown as { path: string }).path, ent.name);
    if (ent.isFile() && (await fs.readFile(p)).includes(needle)) found.push(p);
  }
  return found;
}

test('a wrong password: one line, code auth, exit 1, no target, and the password tried is not printed', async () => {
  const target = join(root, 'wrong');
  const wrong = 'Wr0ng:guess';
  const r = await spawnPgbb(['backup', ...bob(`password='${wrong}'`), '-D', target, '-X', 'fetch']).done;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pgbb: error: connection to server at "127\.0\.0\.1:\d+" failed: password authentication failed for user "bob"\n$/);
  assert.ok(!r.stderr.includes(wrong));
  assert.ok(!existsSync(target));
  const j = await spawnPgbb(['backup', ...bob(`password='${wrong}'`), '-D', target, '-X', 'fetch', '--json']).done;
  assert.equal(jsonError(j.stderr).code, 'auth');
  assert.ok(!j.stderr.includes(wrong));
});

test('no password anywhere: one line saying so, code auth (not a crash, not a deprecation warning)', async () => {
  const r = await spawnPgbb(['backup', ...bob(), '-D', join(root, 'none'), '-X', 'fetch', '--json'], {
    env: { HOME: home, PGPASSWORD: '', PGPASSFILE: '' },
  }).done;
  assert.equal(r.code, 1);
  const e = jsonError(r.stderr);
  assert.equal(e.code, 'auth');
  assert.match(e.message, /failed: no password supplied for user "bob" \(give password= in -d, PGPASSWORD or an entry in .*\.pgpass\)$/);
});

for (const how of ['conninfo', 'PGPASSWORD', '.pgpass'] as const) {
  test(`the right password from ${how}: the backup verifies, and the password is in no output and no file of the backup`, async () => {
    const target = join(root, `ok-${how}`);
    let args = bob();
    const env: NodeJS.ProcessEnv = { HOME: home, PGPASSWORD: '', PGPASSFILE: '' };
    if (how === 'conninfo') args = bob(`password='${PASSWORD.replace(/'/g, "\\'")}'`);
    if (how === 'PGPASSWORD') env.PGPASSWORD = PASSWORD;
    if (how === '.pgpass') {
      const esc = (s: string) => s.replace(/[\\:]/g, (c) => `\\${c}`);
      await fs.writeFile(join(home, '.pgpass'), `127.0.0.1:${cluster.port}:replication:bob:${esc(PASSWORD)}\n`, { mode: 0o600 });
    }
    try {
      const r = await spawnPgbb(['backup', ...args, '-D', target, '-c', 'fast', '--json', '-v', '-l', 'auth test'], { env }).done;
      assert.equal(r.code, 0, r.stderr);
      const events = jsonEvents(r.stderr.split('\n').filter((l) => l.startsWith('{')).join('\n'));
      assert.ok(events.some((e) => e.event === 'result'));
      // Only JSON lines and the -v summary: no warning from pg about .pgpass.
      assert.deepEqual(r.stderr.split('\n').filter((l) => l && !l.startsWith('{')).map((l) => l.replace(/:.*/, '')), ['pgbb']);
      for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes(PASSWORD) && !out.includes('Secret'), 'password printed');
      await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', target]);
      assert.deepEqual(await filesContaining(target, 'Secret'), [], 'password in a file of the backup');
      assert.deepEqual(await filesContaining(target, 'LABEL: auth test'), [join(target, 'backup_label')], 'the scan reads the files');
    } finally {
      await fs.rm(join(home, '.pgpass'), { force: true });
    }
  });
}

for (const [user, password] of [['carol', SHORT], ['dave', LONG]] as const) {
  test(`a role without REPLICATION, password of ${password.length} characters: the server's message comes out intact, the password nowhere`, async () => {
    const target = join(root, `norepl-${user}`);
    const args = ['backup', '-d', `host=${cluster.host} port=${cluster.port} user=${user} password=${password}`, '-D', target, '-X', 'fetch'];
    const env = { HOME: home, PGPASSWORD: '', PGPASSFILE: '' };
    const r = await spawnPgbb(args, { env }).done;
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `pgbb: error: connection to server at "127.0.0.1:${cluster.port}" failed: must be superuser or replication role to start walsender\n`);
    const j = await spawnPgbb([...args, '--json'], { env }).done;
    assert.equal(j.code, 1);
    assert.deepEqual(jsonError(j.stderr), { event: 'error', code: 'auth', message: `connection to server at "127.0.0.1:${cluster.port}" failed: must be superuser or replication role to start walsender` });
    if (password === LONG) for (const out of [r.stdout, r.stderr, j.stdout, j.stderr]) assert.ok(!out.includes('Long-Secret'), out);
    assert.ok(!existsSync(target));
  });
}

test('the long password, used for a backup that works (with --json and -v), is in no line, event or file of the backup', async () => {
  await cluster.query('ALTER ROLE dave REPLICATION');
  try {
    const target = join(root, 'dave-ok');
    const r = await spawnPgbb(['backup', '-d', `host=${cluster.host} port=${cluster.port} user=dave password=${LONG}`, '-D', target, '-c', 'fast', '--json', '-v'], {
      env: { HOME: home, PGPASSWORD: '', PGPASSFILE: '' },
    }).done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(jsonEvents(r.stderr.split('\n').filter((l) => l.startsWith('{')).join('\n')).some((e) => e.event === 'result'));
    for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes('Long-Secret'), 'password printed');
    assert.deepEqual(await filesContaining(target, 'Long-Secret'), [], 'password in a file of the backup');
  } finally {
    await cluster.query('ALTER ROLE dave NOREPLICATION');
  }
});

test('--json error codes: each failure is one error event with a stable code and the exit status scripts expect', async (t) => {
  await fs.mkdir(join(root, 'full'));
  await fs.writeFile(join(root, 'full', 'x'), 'x');
  await fs.mkdir(join(root, 'locked'));
  // A lock held by a live process (this test runner).
  await fs.writeFile(join(root, 'locked', LOCK_FILE), `${process.pid} 0\n`);
  const postgres = ['-d', `host=${cluster.host} port=${cluster.port} user=postgres`];
  // One replication connection held open: -X stream needs two more than max_wal_senders = 2 leaves.
  const holder = new Client({ ...cluster.connectionConfig(), replication: 'true' } as ConstructorParameters<typeof Client>[0]);
  const cases: { code: string; exit: number; args: string[]; message: RegExp }[] = [
    { code: 'usage', exit: 1, args: ['-d', 'host=127.0.0.1', '-D', join(root, 'u'), '-F', 'zip'], message: /invalid output format "zip"/ },
    { code: 'connection', exit: 1, args: ['-d', 'host=127.0.0.1 port=1 user=postgres', '-D', join(root, 'c')], message: /ECONNREFUSED/ },
    { code: 'auth', exit: 1, args: [...bob("password='nope'"), '-D', join(root, 'a'), '-X', 'fetch'], message: /password authentication failed/ },
    { code: 'target_not_empty', exit: 1, args: [...postgres, '-D', join(root, 'full')], message: /exists but is not empty/ },
    { code: 'target_locked', exit: 1, args: [...postgres, '-D', join(root, 'locked')], message: new RegExp(`locked by another pgbb run \\(pid ${process.pid}\\)`) },
    { code: 'slot', exit: 1, args: [...postgres, '-D', join(root, 's'), '-S', 'no_such_slot'], message: /replication slot "no_such_slot" does not exist/ },
    { code: 'wal_senders', exit: 1, args: [...postgres, '-D', join(root, 'w')], message: /exceeds max_wal_senders/ },
  ];
  for (const c of cases) {
    if (c.code === 'wal_senders') await holder.connect();
    const r = await spawnPgbb(['backup', ...c.args, '-c', 'fast', '--json']).done;
    if (c.code === 'wal_senders') await holder.end();
    assert.equal(r.code, c.exit, `${c.code}: ${r.stderr}`);
    const e = jsonError(r.stderr);
    assert.equal(e.code, c.code, e.message);
    assert.match(e.message, c.message);
    t.diagnostic(`${c.code}: ${e.message}`);
  }
  assert.deepEqual(await fs.readdir(join(root, 'full')), ['x']);
  assert.deepEqual(await fs.readdir(join(root, 'locked')), [LOCK_FILE]);
  for (const d of ['u', 'c', 'a', 's', 'w']) assert.ok(!existsSync(join(root, d)), `${d} removed`);
  await serverClean(cluster);

  // interrupted (SIGINT), io (stdout's reader gone), checksum (a corrupted page).
  const slow = spawnPgbb(['backup', ...postgres, '-D', join(root, 'i'), '-c', 'fast', '-r', '1M', '--json']);
  await waitFor('the server to stream files', () => backupStreaming(cluster));
  slow.child.kill('SIGINT');
  const ri = await slow.done;
  assert.equal(ri.code, 130);
  assert.equal(jsonError(ri.stderr).code, 'interrupted');

  const pipe = spawnPgbb(['backup', ...postgres, '-D', '-', '-c', 'fast', '--json'], { stdout: 'keep' });
  pipe.child.stdout!.once('data', () => pipe.child.stdout!.destroy());
  const rp = await pipe.done;
  assert.equal(rp.code, 1);
  assert.deepEqual(jsonError(rp.stderr), { event: 'error', code: 'io', message: 'could not write to standard output: broken pipe (the reader went away)' });

  await cluster.query('CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 2000) g');
  await cluster.query('CHECKPOINT');
  const [rel] = await cluster.query<{ path: string }>(`SELECT pg_relation_filepath('victim') AS path`);
  const fh = await fs.open(join(cluster.dataDir, rel.path), 'r+');
  await fh.write(Buffer.from([0x5a]), 0, 1, 8192 + 4000); // block 1; shared buffers hold it clean, the backup reads the disk
  await fh.close();
  try {
    const rc = await spawnPgbb(['backup', ...postgres, '-D', join(root, 'k'), '-c', 'fast', '--json']).done;
    assert.equal(rc.code, 1);
    const e = jsonError(rc.stderr);
    assert.equal(e.code, 'checksum');
    assert.match(e.message, /checksum verification failed in file ".*", block 1/);
    assert.ok(!existsSync(join(root, 'k')));
  } finally {
    await cluster.query('DROP TABLE victim');
  }
  await serverClean(cluster);
});

/** Runs the CLI on a pseudo-terminal (script(1)), answering its prompt; resolves with what the terminal showed and the exit code. */
function onTerminal(args: string[], answer: string): Promise<{ code: number | null; screen: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, PGBB_CLI, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: '' } });
    let screen = '';
    let answered = false;
    child.stdout.on('data', (d) => {
      screen += d;
      if (!answered && screen.includes('Password: ')) {
        answered = true;
        child.stdin.write(`${answer}\r`);
      }
    });
    child.stderr.on('data', (d) => (screen += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, screen });
    });
  });
}

test('-W asks for the password on the terminal, without echo, before connecting; without a terminal it says so', async () => {
  const target = join(root, 'prompted');
  const r = await onTerminal(['backup', ...bob(), '-D', target, '-F', 'tar', '-X', 'none', '-c', 'fast', '-N', '-W'], PASSWORD);
  assert.equal(r.code, 0, r.screen);
  assert.match(r.screen, /^Password: /);
  assert.ok(!r.screen.includes(PASSWORD) && !r.screen.includes('Secret'), `the password was echoed: ${JSON.stringify(r.screen)}`);
  assert.ok(existsSync(join(target, 'base.tar')));

  const wrong = await onTerminal(['backup', ...bob(), '-D', join(root, 'prompted-wrong'), '-F', 'tar', '-X', 'none', '-W'], 'not it');
  assert.equal(wrong.code, 1);
  assert.match(wrong.screen, /password authentication failed for user "bob"/);

  // No terminal (setsid: no controlling tty): one line, exit 1, nothing created.
  const none = await run('setsid', ['-w', process.execPath, PGBB_CLI, 'backup', ...bob(), '-D', join(root, 'prompted-none'), '-W']).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(none, 'refused');
  assert.match(String((none as Error).message), /-W: there is no terminal to ask for the password on/);
  assert.ok(!existsSync(join(root, 'prompted-none')));
});
