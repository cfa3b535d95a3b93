/**
 * `pgbb backup -j N` (src/sources/parallel-source.ts) against a real
 * PostgreSQL 15 with the sample tablespace and pgbench tables: judged by
 * pg_verifybackup, a restored server (amcheck, the sample data's
 * fingerprint), BASE_BACKUP's own file list, and pg_stat_activity after a
 * worker's connection is killed.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { dataFingerprint, type Cluster } from '../support/cluster';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { btreeCheck } from '../support/amcheck';

const pg = useSampleServer({
  fingerprint: true,
  conf: { max_connections: 30 },
  setup: (cluster) => cluster.pgbench(['-i', '-q', '-s', '2', 'postgres']),
});
const { conn, scratch, verify, onCleanup, withStarted } = pg;

/** -T for the sample tablespace into root/ts. */
const mapTs = (root: string) => ['-T', `${pg.tsLocation}=${join(root, 'ts')}`];

/** Every path below `dir` ('/'-separated, directories marked with a trailing '/'), leaving out pg_wal's contents. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (rel.startsWith('pg_wal/') && rel !== 'pg_wal/archive_status') continue;
    if (e.isDirectory()) out.push(`${rel}/`, ...(await tree(dir, rel)));
    else out.push(e.isSymbolicLink() ? `${rel}@` : rel);
  }
  return out.sort();
}

/** The fingerprint's lines that pgbench's writes do not change. */
const steady = (fingerprint: string) => fingerprint.split('\n').filter((l) => !/^(history|abalance|accounts_hash)=/.test(l)).join('\n');

async function clientBackends(c: Cluster): Promise<number> {
  const [r] = await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`);
  return Number(r.n);
}

test('-j 4 while pgbench writes: pg_verifybackup accepts it, the copy starts, amcheck is clean, the sample data is intact', async () => {
  const root = await scratch('pgbb-par-');
  const target = join(root, 'data');
  const bench = pg.cluster.pgbench(['-T', '8', '-c', '2', '-n', 'postgres']);
  onCleanup(() => bench.catch(() => {}));
  await sleep(1500);
  const [before] = await pg.cluster.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_history');
  const r = await runPgbb(['backup', ...conn(), '-D', target, ...mapTs(root), '-j', '4', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  await verify(target);
  await bench;
  await withStarted(target, async (restored) => {
    assert.equal(steady(await dataFingerprint(restored)), steady(pg.fingerprint), 'what pgbench does not write is as it was');
    const [after] = await restored.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_history');
    assert.ok(Number(after.n) > Number(before.n), `writes made during the backup were replayed (${before.n} → ${after.n})`);
    assert.deepEqual(await btreeCheck(restored, 'pgbench\\_%'), ['pgbench_accounts_pkey', 'pgbench_branches_pkey', 'pgbench_tellers_pkey']);
  });
});

test('-j 2 and --local-pgdata write the files BASE_BACKUP sends, no more and no fewer; a directory not the server\'s is refused', async () => {
  const root = await scratch('pgbb-par-list-');
  await pg.cluster.query('CHECKPOINT');
  const backupInto = async (name: string, extra: string[]) => {
    const r = await runPgbb(['backup', ...conn(), '-D', join(root, name), '-T', `${pg.tsLocation}=${join(root, `${name}-ts`)}`, '-c', 'fast', '-N', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return { data: await tree(join(root, name)), ts: await tree(join(root, `${name}-ts`)) };
  };
  const serial = await backupInto('serial', []);
  assert.ok(serial.data.includes('global/pg_control') && serial.data.includes('pg_wal/archive_status/'), 'the listing is of a data directory');
  assert.deepEqual(await backupInto('parallel', ['-j', '2']), serial);
  assert.deepEqual(await backupInto('local', ['-j', '2', '--local-pgdata', pg.cluster.dataDir]), serial);
  await verify(join(root, 'parallel'));
  await verify(join(root, 'local'));
  // A copy of the data directory (same system identifier) is not the server's.
  const wrong = await runPgbb(['backup', ...conn(), '-D', join(root, 'wrong'), '--local-pgdata', join(root, 'serial'), '-c', 'fast']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^pgbb: error: ".*serial" is not the server's data directory \(".*"\)\n$/);
  assert.equal(existsSync(join(root, 'wrong')), false);
});

test('-j 2 -F tar -Z zstd --json: one progress count with the WAL; archives that pgbb verify accepts (WAL parsed, pages checked)', async () => {
  const root = await scratch('pgbb-par-tar-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '-Z', 'zstd', '-j', '2', '-c', 'fast', '-N', '--json']);
  assert.equal(r.code, 0, r.stderr);
  // One progress count for all workers, the WAL stream included.
  const last = r.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'progress').pop();
  assert.ok(last && last.phase === 'done' && last.done === last.total && last.total > 0 && last.wal > 0, JSON.stringify(last));
  assert.deepEqual((await fs.readdir(target)).sort(), [`${pg.tsOid}.tar.zst`, 'backup_manifest', 'base.tar.zst', 'pg_wal.tar.zst']);
  const v = await runPgbb(['verify', target]);
  assert.equal(v.code, 0, v.stderr);
});

test('a worker connection killed mid-backup fails the backup cleanly: one error line, no target, no session or backup left on the server', async () => {
  const root = await scratch('pgbb-par-kill-');
  const target = join(root, 'data');
  // -r keeps the backup going long enough to find a worker.
  const running = runPgbb(['backup', ...conn(), '-D', target, ...mapTs(root), '-j', '3', '-r', '2048', '-c', 'fast']);
  let killed = false;
  for (let i = 0; i < 200 && !killed; i++) {
    const [w] = await pg.cluster.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT pg\\_read\\_binary\\_file%' AND pid <> pg_backend_pid() LIMIT 1`,
    );
    if (w) killed = (await pg.cluster.query(`SELECT pg_terminate_backend(${w.pid})`)).length === 1;
    else await sleep(50);
  }
  assert.ok(killed, 'a worker was found and terminated');
  const r = await running;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^pgbb: error: .*\n$/);
  assert.equal(existsSync(target), false, 'the target is removed');
  // The leader stopped the backup and every session ended (a non-exclusive backup lives in its session).
  let left = await clientBackends(pg.cluster);
  for (let i = 0; i < 50 && left > 0; i++) {
    await sleep(100);
    left = await clientBackends(pg.cluster);
  }
  assert.equal(left, 0, 'no pgbb session is left on the server');
});

test('a role without the privileges gets the GRANTs that fix it, and after them the backup works', async () => {
  const root = await scratch('pgbb-par-priv-');
  await pg.cluster.query(`CREATE ROLE par_low LOGIN REPLICATION`);
  const args = ['backup', '-d', `host=${pg.cluster.host} port=${pg.cluster.port} user=par_low dbname=postgres`, '-D', join(root, 'a'), ...mapTs(root), '-j', '2', '-c', 'fast', '-N'];
  const r = await runPgbb(args);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^pgbb: error: parallel backup \(-j\) needs superuser or EXECUTE on pg_backup_start\(text, boolean\).*GRANT EXECUTE ON FUNCTION pg_backup_start\(text, boolean\) TO "par_low";.*\n$/);
  assert.equal(existsSync(join(root, 'a')), false);
  const grants = /run: (.*)$/m.exec(r.stderr)![1];
  await pg.cluster.query(grants);
  const ok = await runPgbb(args);
  assert.equal(ok.code, 0, ok.stderr);
  await verify(join(root, 'a'));
});

test('more jobs than max_connections leaves room for: a clear error before anything starts', async () => {
  const root = await scratch('pgbb-par-room-');
  const r = await runPgbb(['backup', ...conn(), '-D', join(root, 'a'), ...mapTs(root), '-j', '40']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pgbb: error: -j 40 needs 40 more connections but the server has room for \d+ \(max_connections 30, \d+ in use\); use a smaller -j or raise max_connections\n$/);
  assert.equal(existsSync(join(root, 'a')), false);
  assert.equal(await clientBackends(pg.cluster), 0);
});

test('refresh -j 2: only pieces that differ cross the network (less than twice the changed chunks), and the refreshed backup is the server', async () => {
  const root = await scratch('pgbb-par-refresh-');
  const target = join(root, 'data');
  const first = await runPgbb(['backup', ...conn(), '-D', target, ...mapTs(root), '-j', '2', '-c', 'fast', '-N']);
  assert.equal(first.code, 0, first.stderr);
  const [db] = await pg.cluster.query<{ bytes: string }>(`SELECT sum(pg_database_size(datname))::text AS bytes FROM pg_database`);
  await pg.cluster.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN 1000 AND 1400`);
  await pg.cluster.query('CHECKPOINT');
  // -X none: what crossed the network is file data only.
  const r = await runPgbb(['refresh', ...conn(), '-D', target, '-j', '2', '-X', 'none', '-c', 'fast', '-N', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stderr.trim().split('\n').pop()!);
  assert.ok(result.chunksChanged > 0 && result.chunksUnchanged > result.chunksChanged, JSON.stringify(result));
  const changedBytes = result.chunksChanged * 1024 * 1024;
  assert.ok(result.bytesReceived < 2 * changedBytes, `received ${result.bytesReceived} bytes for ${result.chunksChanged} changed chunks`);
  assert.ok(result.bytesReceived < Number(db.bytes) / 10, `received ${result.bytesReceived} of a ${db.bytes}-byte cluster`);
  // Once more with WAL, so that the copy can start: it holds what the server holds now.
  const again = await runPgbb(['refresh', ...conn(), '-D', target, '-j', '2', '-c', 'fast', '-N']);
  assert.equal(again.code, 0, again.stderr);
  await verify(target);
  const now = await dataFingerprint(pg.cluster);
  await withStarted(target, async (restored) => assert.equal(await dataFingerprint(restored), now));
});
