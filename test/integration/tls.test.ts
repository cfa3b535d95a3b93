/**
 * TLS as libpq does it, against a real PostgreSQL 15 with `ssl = on` and a
 * certificate made here with the openssl CLI (a test CA signing a server
 * certificate for `pgbb-test.invalid`), whose pg_hba.conf admits replication
 * connections only over TLS (`hostssl`): a plain replication connection is
 * refused, so a backup that works went over TLS, its data included.
 *
 *   sslmode unset (prefer)    TLS first: the backup works
 *   disable                   refused by pg_hba: one line, exit 1
 *   allow                     plain first, refused, then TLS: works
 *   verify-ca + right CA      works, whatever the host name
 *   verify-ca + wrong CA      refused: the chain does not verify
 *   require + ~/.postgresql/root.crt of the wrong CA   refused (as verify-ca)
 *   verify-full, host 127.0.0.1                       refused: name mismatch
 *   verify-full, host=pgbb-test.invalid hostaddr=127.0.0.1   works
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chownToPostgres, Cluster, DEBIAN_PG15_BIN, makeTempDir } from '../support/cluster';
import { run } from '../support/run';
import { reapChildren, spawnPgbb } from '../support/failure-helpers';

let cluster: Cluster;
let root: string;
let home: string;
const NAME = 'pgbb-test.invalid';

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

/** A CA (key, certificate) in dir/<name>.key, dir/<name>.crt. */
async function makeCa(name: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', join(root, `${name}.key`), '-out', join(root, `${name}.crt`)]);
}

before(async () => {
  root = await makeTempDir('pgbb-tls-');
  home = join(root, 'home');
  await fs.mkdir(home);
  await makeCa('ca');
  await makeCa('wrong-ca');
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${NAME}`,
    '-keyout', join(root, 'server.key'), '-out', join(root, 'server.csr')]);
  await fs.writeFile(join(root, 'san.ext'), `subjectAltName=DNS:${NAME}\n`);
  await openssl(['x509', '-req', '-in', join(root, 'server.csr'), '-CA', join(root, 'ca.crt'), '-CAkey', join(root, 'ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', join(root, 'san.ext'), '-out', join(root, 'server.crt')]);

  cluster = await Cluster.create({ conf: { max_wal_senders: 4 } });
  for (const f of ['server.crt', 'server.key']) {
    await fs.copyFile(join(root, f), join(cluster.dataDir, f));
    await fs.chmod(join(cluster.dataDir, f), 0o600);
    await chownToPostgres(join(cluster.dataDir, f), false);
  }
  // Replication (what pgbb uses) only over TLS; the harness's own SQL connections stay plain.
  await fs.writeFile(
    join(cluster.dataDir, 'pg_hba.conf'),
    'local all all trust\nlocal replication all trust\nhostssl replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n',
  );
  await cluster.query('ALTER SYSTEM SET ssl = on');
  await cluster.query('SELECT pg_reload_conf()');
  const [{ ssl }] = await cluster.query<{ ssl: string }>('SHOW ssl');
  assert.equal(ssl, 'on', 'the server turned TLS on');
});

after(async () => {
  await reapChildren();
  await cluster?.destroy();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/** A backup with only this conninfo (no PG* variables, an empty HOME unless given). */
function backup(name: string, conninfo: string, extra: string[] = ['-X', 'fetch'], env: NodeJS.ProcessEnv = {}) {
  const clean = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('PG')).map((k) => [k, undefined]));
  const target = join(root, name);
  const done = spawnPgbb(['backup', '-d', `port=${cluster.port} user=postgres ${conninfo}`, '-D', target, '-c', 'fast', ...extra], {
    env: { ...clean, HOME: home, ...env },
  }).done;
  return { target, done };
}

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], /^pgbb: error: /);
  return lines[0];
}

test('sslmode unset: TLS first (as libpq\'s prefer), so a hostssl-only server takes the backup and its streamed WAL', async () => {
  const { target, done } = backup('prefer', 'host=127.0.0.1', ['-X', 'stream']);
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', target]);
});

test('sslmode=disable against hostssl-only: refused by pg_hba, one line naming the missing encryption', async () => {
  const { target, done } = backup('disable', 'host=127.0.0.1 sslmode=disable');
  const r = await done;
  assert.equal(r.code, 1);
  assert.match(oneLine(r.stderr), /failed: no pg_hba\.conf entry for replication connection from host "127\.0\.0\.1", user "postgres", no encryption$/);
  assert.ok(!existsSync(target));
});

test('sslmode=allow: plain first, and TLS when the server refuses the plain connection (as libpq)', async () => {
  const { target, done } = backup('allow', 'host=127.0.0.1 sslmode=allow');
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(target, 'backup_manifest')));
});

test('verify-ca: the right root certificate works with any host name, a wrong one is refused', async () => {
  const ok = backup('verify-ca', `host=127.0.0.1 sslmode=verify-ca sslrootcert=${join(root, 'ca.crt')}`);
  const r = await ok.done;
  assert.equal(r.code, 0, r.stderr);
  await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', '-n', ok.target]);

  const bad = backup('verify-ca-wrong', `host=127.0.0.1 sslmode=verify-ca sslrootcert=${join(root, 'wrong-ca.crt')}`);
  const rb = await bad.done;
  assert.equal(rb.code, 1);
  assert.match(oneLine(rb.stderr), /^pgbb: error: connection to server at "127\.0\.0\.1:\d+" failed: server certificate not accepted: /);
  assert.ok(!existsSync(bad.target));
});

test('require with ~/.postgresql/root.crt present verifies the chain, as libpq: the wrong CA is refused', async () => {
  const other = join(root, 'home-wrong');
  await fs.mkdir(join(other, '.postgresql'), { recursive: true });
  await fs.copyFile(join(root, 'wrong-ca.crt'), join(other, '.postgresql', 'root.crt'));
  const { target, done } = backup('require-wrong', 'host=127.0.0.1 sslmode=require', ['-X', 'fetch'], { HOME: other });
  const r = await done;
  assert.equal(r.code, 1);
  assert.match(oneLine(r.stderr), /failed: server certificate not accepted: /);
  assert.ok(!existsSync(target));
  // Without the file, require does not verify: the backup works.
  const plain = backup('require', 'host=127.0.0.1 sslmode=require');
  assert.equal((await plain.done).code, 0);
});

test('verify-full: the certificate must name the host (host=, not hostaddr=)', async () => {
  const ca = `sslmode=verify-full sslrootcert=${join(root, 'ca.crt')}`;
  const bad = backup('verify-full-ip', `host=127.0.0.1 ${ca}`);
  const rb = await bad.done;
  assert.equal(rb.code, 1);
  assert.match(oneLine(rb.stderr), new RegExp(`failed: server certificate for "DNS:${NAME.replace(/\./g, '\\.')}" does not match host name "127\\.0\\.0\\.1"$`));
  assert.ok(!existsSync(bad.target));

  const ok = backup('verify-full', `host=${NAME} hostaddr=127.0.0.1 ${ca}`);
  const r = await ok.done;
  assert.equal(r.code, 0, r.stderr);
});
