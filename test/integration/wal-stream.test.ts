/**
 * -X stream against real PostgreSQL 15 servers: WAL streamed on a second
 * connection makes the backup self-contained. Judged by PostgreSQL's own
 * tools: pg_verifybackup (which parses the WAL with pg_waldump), a restored
 * server that starts with no archive, and amcheck on the indexes pgbench
 * was writing to while the backup ran.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN } from '../support/cluster';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { btreeCheck } from '../support/amcheck';
import { parseLsn, ReplicationSource, runPipeline, type BackupEvent } from '../../src/index';

const SEGMENT = /^[0-9A-F]{24}$/;
const SEG_SIZE = 16 * 1024 * 1024;

const pg = useSampleServer({ sampleData: false, setup: (cluster) => cluster.pgbench(['-i', '-q', '-s', '2', 'postgres']) });
const { conn, scratch, verify, onCleanup, withStarted } = pg;

async function slotCount(c: Cluster = pg.cluster): Promise<number> {
  const [r] = await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_replication_slots');
  return Number(r.n);
}

/** Polls pg_replication_slots until stopped; returns every slot name seen (temporary ones marked `(temp)`). */
function watchSlots(c: Cluster): { stop(): Promise<Set<string>> } {
  const seen = new Set<string>();
  let watching = true;
  const loop = (async () => {
    while (watching) {
      for (const r of await c.query<{ slot_name: string; temporary: boolean }>('SELECT slot_name, temporary FROM pg_replication_slots')) {
        seen.add(r.temporary ? `${r.slot_name} (temp)` : r.slot_name);
      }
      await sleep(50);
    }
  })();
  return {
    async stop() {
      watching = false;
      await loop;
      return seen;
    },
  };
}

/** The segment backup_label names as the start: it must be in any self-contained backup. */
function startSegment(label: string): string {
  const m = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(label);
  assert.ok(m, 'backup_label names its start segment');
  return m[1];
}

/** Segments whole, `.done` for each one but possibly the last, nothing else. */
async function checkWalDir(walDir: string, label: string): Promise<string[]> {
  const names = (await fs.readdir(walDir)).sort();
  const segments = names.filter((n) => SEGMENT.test(n));
  assert.ok(segments.length >= 1, `segments in ${walDir}: ${names.join(' ')}`);
  assert.ok(segments.includes(startSegment(label)), 'the start segment was streamed');
  for (const s of segments) assert.equal((await fs.stat(join(walDir, s))).size, SEG_SIZE, `${s} is a whole segment`);
  const done = (await fs.readdir(join(walDir, 'archive_status'))).sort();
  for (const s of segments.slice(0, -1)) assert.ok(done.includes(`${s}.done`), `${s} is complete and marked done`);
  for (const d of done) assert.ok(segments.includes(d.replace(/\.done$/, '')) || d.endsWith('.history.done'), d);
  return segments;
}

test('plain backup while pgbench writes: pg_verifybackup accepts it, the copy starts without an archive, amcheck passes, no slot left', async () => {
  const root = await scratch('pgbb-walstream-');
  const target = join(root, 'data');
  const bench = pg.cluster.pgbench(['-T', '20', '-c', '2', '-n', 'postgres']);
  onCleanup(() => bench.catch(() => {})); // whatever happens, it has ended before the server goes
  await sleep(2000); // pgbench is connected and writing
  const [before] = await pg.cluster.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_history');

  // A temporary slot exists while the backup runs, and is gone when pgbb exits.
  const watcher = watchSlots(pg.cluster);
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-c', 'fast']);
  const slotsSeen = [...(await watcher.stop())];
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(await slotCount(), 0, 'no slot outlives the backup');
  assert.ok(slotsSeen.length === 1 && /^pgbb_\d+ \(temp\)$/.test(slotsSeen[0]), `one temporary slot during the backup: ${slotsSeen}`);

  await verify(target); // parses every WAL record from start to end
  const label = await fs.readFile(join(target, 'backup_label'), 'utf8');
  const segments = await checkWalDir(join(target, 'pg_wal'), label);
  await bench; // pgbench -T 20 finished without error while the backup ran

  await withStarted(target, async (restored) => {
    assert.equal(await restored.psql('SHOW restore_command'), '');
    const [after] = await restored.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_history');
    assert.ok(Number(after.n) > Number(before.n), `writes made during the backup were replayed (${before.n} → ${after.n})`);
    assert.deepEqual(await btreeCheck(restored, 'pgbench\\_%'), ['pgbench_accounts_pkey', 'pgbench_branches_pkey', 'pgbench_tellers_pkey']);
  });
  assert.ok(segments.length >= 1);
});

test('-F tar: pg_wal.tar beside base.tar holds the segments; unpacked, pg_verifybackup accepts it and it starts', async () => {
  const root = await scratch('pgbb-walstream-tar-');
  const target = join(root, 'tar');
  const r = await runPgbb(['backup', ...conn(), '-D', target, '-F', 'tar', '-c', 'fast', '-N']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await fs.readdir(target)).sort(), ['backup_manifest', 'base.tar', 'pg_wal.tar']);
  const members = (await run('tar', ['-tf', join(target, 'pg_wal.tar')])).stdout.split('\n').filter(Boolean);
  assert.ok(members.some((m) => SEGMENT.test(m)), members.join(' '));
  // The last segment is usually cut at the end LSN (no .done); any .done names a segment here.
  for (const m of members.filter((x) => x.endsWith('.done'))) assert.ok(members.includes(m.replace(/^archive_status\/(.*)\.done$/, '$1')), m);
  const base = (await run('tar', ['-tf', join(target, 'base.tar')])).stdout.split('\n');
  assert.ok(!base.some((m) => /^pg_wal\/[0-9A-F]{24}$/.test(m)), 'no WAL inside base.tar with -X stream');

  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', join(target, 'base.tar'), '-C', data]);
  await run('tar', ['-xf', join(target, 'pg_wal.tar'), '-C', join(data, 'pg_wal')]);
  await fs.copyFile(join(target, 'backup_manifest'), join(data, 'backup_manifest'));
  await verify(data);
  await checkWalDir(join(data, 'pg_wal'), await fs.readFile(join(data, 'backup_label'), 'utf8'));
  await withStarted(data, async (restored) => {
    assert.equal(await restored.psql('SELECT count(*) FROM pgbench_branches'), '2');
  });
});

test('-D -: one tar stream with pg_wal/<segment> members before backup_manifest; extracted, it verifies', async () => {
  const root = await scratch('pgbb-walstream-stdout-');
  const file = join(root, 'backup.tar');
  const r = await runPgbb(['backup', ...conn(), '-D', '-', '-c', 'fast'], { stdoutFile: file });
  assert.equal(r.code, 0, r.stderr);
  const names = (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
  assert.ok(names.some((n) => /^pg_wal\/[0-9A-F]{24}$/.test(n)), 'segments under pg_wal/');
  for (const n of names.filter((x) => x.endsWith('.done'))) assert.ok(names.includes(n.replace(/archive_status\/(.*)\.done$/, '$1')), n);
  assert.equal(names[names.length - 1], 'backup_manifest');
  const data = join(root, 'data');
  await fs.mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', file, '-C', data]);
  await verify(data);
});

test('-S: a missing slot fails at once with one line naming it and leaves nothing; an existing slot is used and survives; --no-slot uses none', async () => {
  const root = await scratch('pgbb-walstream-slot-');
  const missing = join(root, 'missing');
  const r1 = await runPgbb(['backup', ...conn(), '-D', missing, '-c', 'fast', '-S', 'missing_slot']);
  assert.equal(r1.code, 1);
  assert.equal(r1.stderr, 'pgbb: error: replication slot "missing_slot" does not exist\n');
  assert.ok(!existsSync(missing), 'target removed');
  assert.equal(await slotCount(), 0);

  await pg.cluster.query(`SELECT pg_create_physical_replication_slot('s1', true)`);
  const [before] = await pg.cluster.query<{ lsn: string }>(`SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 's1'`);
  // The backup will start in a later segment than the slot's restart_lsn.
  await pg.cluster.query('CREATE TABLE slot_marker AS SELECT 1 AS x');
  await pg.cluster.query('SELECT pg_switch_wal()');
  const target = join(root, 'data');
  const r2 = await runPgbb(['backup', ...conn(), '-D', target, '-c', 'fast', '-S', 's1']);
  assert.equal(r2.code, 0, r2.stderr);
  await verify(target);
  const slots = await pg.cluster.query<{ slot_name: string; active: boolean; temporary: boolean; restart_lsn: string }>(
    'SELECT slot_name, active, temporary, restart_lsn::text FROM pg_replication_slots',
  );
  assert.equal(slots.length, 1, 'no temporary slot besides s1');
  assert.equal(slots[0].slot_name, 's1');
  assert.equal(slots[0].active, false);
  assert.equal(slots[0].temporary, false);
  // The flush position reported (the start segment, then completed segments) moves the slot up to
  // the WAL this backup needs, as pg_basebackup does: a standby made from it can use the slot.
  const startLsn = /^START WAL LOCATION: (\S+) /m.exec(await fs.readFile(join(target, 'backup_label'), 'utf8'))![1];
  const startSegmentLsn = (parseLsn(startLsn) / BigInt(SEG_SIZE)) * BigInt(SEG_SIZE);
  assert.ok(parseLsn(before.lsn) < startSegmentLsn);
  const after = parseLsn(slots[0].restart_lsn);
  assert.ok(after >= startSegmentLsn && after <= parseLsn(startLsn) + BigInt(SEG_SIZE), `${before.lsn} → ${slots[0].restart_lsn}, backup from ${startLsn}`);
  await pg.cluster.query(`SELECT pg_drop_replication_slot('s1')`);

  // --no-slot: no slot at all, temporary or not.
  const watcher = watchSlots(pg.cluster);
  const r5 = await runPgbb(['backup', ...conn(), '-D', join(root, 'noslot'), '-c', 'fast', '--no-slot']);
  const seen = await watcher.stop();
  assert.equal(r5.code, 0, r5.stderr);
  assert.deepEqual([...seen], []);
  await verify(join(root, 'noslot'));

  const r3 = await runPgbb(['backup', ...conn(), '-D', join(root, 'x'), '-X', 'fetch', '-S', 's1']);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /replication slots can only be used with WAL streaming/);
  const r4 = await runPgbb(['backup', ...conn(), '-D', join(root, 'y'), '-S', 'Bad-Name']);
  assert.equal(r4.code, 1);
  assert.match(r4.stderr, /invalid character/);
  assert.ok(!existsSync(join(root, 'x')) && !existsSync(join(root, 'y')));
});

test('max_wal_senders=1: -X stream needs two, one clear line (code wal_senders), nothing left behind', async () => {
  const small = await Cluster.create({ conf: { max_wal_senders: 1 } });
  onCleanup(() => small.destroy());
  const root = await scratch('pgbb-walstream-senders-');
  const target = join(root, 'data');
  const r = await runPgbb(['backup', ...conn(small), '-D', target, '-c', 'fast']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n').length, 2, `exactly one line: ${r.stderr}`);
  assert.match(r.stderr, /^pgbb: error: connection to server at .* failed: number of requested standby connections exceeds max_wal_senders \(currently 1\); -X stream needs a second replication connection/);
  assert.ok(!existsSync(target), 'target removed');
  assert.equal(await slotCount(small), 0);
  // No backup was started on the server (the check comes before BASE_BACKUP).
  const [{ n }] = await small.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_progress_basebackup`);
  assert.equal(n, '0');

  // The library reports the stable code.
  const source = new ReplicationSource({ connection: { host: small.host, port: small.port, user: 'postgres' }, wal: 'stream' });
  const sink = new Writable({ objectMode: true, write: (_ev: BackupEvent, _e, cb) => cb() });
  await assert.rejects(runPipeline(source, [], sink), (err: Error & { code?: string }) => err.code === 'wal_senders');

  // -X fetch needs only one.
  const ok = await runPgbb(['backup', ...conn(small), '-D', target, '-c', 'fast', '-X', 'fetch']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('timeline 2: a backup of a promoted standby streams its timeline and history file, verifies and restores', async () => {
  const root = await scratch('pgbb-walstream-tli-');
  const standbyDir = join(root, 'standby');
  await run(
    join(DEBIAN_PG15_BIN, 'pg_basebackup'),
    ['-h', pg.cluster.host, '-p', String(pg.cluster.port), '-U', 'postgres', '-D', standbyDir, '-R', '-X', 'stream', '-c', 'fast'],
    { asPostgres: true },
  );
  const standby = await Cluster.startExisting(standbyDir);
  onCleanup(() => standby.destroy());
  assert.equal(await standby.psql('SELECT pg_is_in_recovery()'), 't');
  await run(join(DEBIAN_PG15_BIN, 'pg_ctl'), ['promote', '-D', standbyDir, '-w', '-t', '60'], { asPostgres: true });
  assert.equal(await standby.psql('SELECT pg_is_in_recovery()'), 'f');
  await standby.query(`CREATE TABLE after_promotion AS SELECT g AS id FROM generate_series(1, 1000) g`);

  const target = join(root, 'data');
  const r = await runPgbb(['backup', ...conn(standby), '-D', target, '-c', 'fast']);
  assert.equal(r.code, 0, r.stderr);
  const label = await fs.readFile(join(target, 'backup_label'), 'utf8');
  assert.match(label, /^START TIMELINE: 2$/m);
  assert.ok(startSegment(label).startsWith('00000002'));
  const wal = await fs.readdir(join(target, 'pg_wal'));
  assert.ok(wal.includes('00000002.history'), wal.join(' '));
  assert.equal(
    await fs.readFile(join(target, 'pg_wal', '00000002.history'), 'utf8'),
    await fs.readFile(join(standbyDir, 'pg_wal', '00000002.history'), 'utf8'),
    'the history file as the server has it',
  );
  assert.ok((await fs.readdir(join(target, 'pg_wal', 'archive_status'))).includes('00000002.history.done'));
  await checkWalDir(join(target, 'pg_wal'), label);
  await verify(target);
  assert.equal(await slotCount(standby), 0);

  await withStarted(target, async (restored) => {
    assert.equal(await restored.psql('SELECT count(*) FROM after_promotion'), '1000');
    assert.ok(Number(await restored.psql('SELECT timeline_id FROM pg_control_checkpoint()')) >= 2);
  });
});

test('the WAL connection dropped mid-backup: pgbb fails at once with one line, removes the target, leaves no slot', async () => {
  const root = await scratch('pgbb-walstream-drop-');
  const target = join(root, 'data');
  const began = Date.now();
  // Rate-limited so that the base backup would take ~15 s.
  const pending = runPgbb(['backup', ...conn(), '-D', target, '-c', 'fast', '-r', '2048']);
  let killed = false;
  while (!killed && Date.now() - began < 30_000) {
    const rows = await pg.cluster.query<{ pid: number }>(`SELECT pid FROM pg_stat_replication WHERE state IN ('streaming', 'catchup')`);
    if (rows.length) {
      await pg.cluster.query(`SELECT pg_terminate_backend(${Number(rows[0].pid)})`);
      killed = true;
    } else await sleep(50);
  }
  assert.ok(killed, 'saw the WAL streaming connection');
  const killedAt = Date.now();
  const r = await pending;
  assert.equal(r.code, 1);
  assert.ok(Date.now() - killedAt < 5000, `failed ${Date.now() - killedAt} ms after the drop, not at the end of the backup`);
  assert.equal(r.stderr, 'pgbb: error: WAL streaming connection lost: terminating connection due to administrator command\n');
  assert.ok(!existsSync(target), 'target removed');
  assert.equal(await slotCount(), 0);
  // The base backup's walsender notices the closed socket at its next send (throttled here).
  let running = '1';
  for (const until = Date.now() + 10_000; running !== '0' && Date.now() < until; await sleep(100)) {
    [{ n: running }] = await pg.cluster.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_progress_basebackup`);
  }
  assert.equal(running, '0', 'the server aborted the base backup');
});

for (const when of ['during the base archive', 'while the pg_wal archive is read back'] as const) {
  test(`library: an abort ${when} removes the WAL spool and the temporary slot`, async () => {
    const root = await scratch('pgbb-walstream-abort-');
    const spoolParent = join(root, 'spool');
    const ac = new AbortController();
    const source = pg.source({
      wal: 'stream',
      walSpool: spoolParent,
      maxRate: when === 'during the base archive' ? 2048 : undefined,
    });
    let dataEvents = 0;
    let inWal = false;
    const sink = new Writable({
      objectMode: true,
      highWaterMark: 2,
      write(ev: BackupEvent, _e, cb) {
        if (ev.type === 'archive') inWal = ev.kind === 'wal';
        if (ev.type === 'data' && (when === 'during the base archive' || inWal) && ++dataEvents === 50) {
          ac.abort();
          return; // never calls back: the abort must not depend on the sink
        }
        setImmediate(cb);
      },
    });
    await assert.rejects(runPipeline(source, [], sink, ac.signal), (err: Error & { code?: string }) => err.code === 'interrupted');
    assert.equal(dataEvents, 50);
    assert.deepEqual(await fs.readdir(spoolParent), [], 'spool removed');
    assert.equal(await slotCount(), 0);
  });
}

test('-X fetch still puts WAL in base.tar; -X none says so and leaves WAL out', async () => {
  const root = await scratch('pgbb-walstream-fetch-');
  const fetched = join(root, 'fetch');
  const r1 = await runPgbb(['backup', ...conn(), '-D', fetched, '-c', 'fast', '-X', 'fetch']);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r1.stderr, '');
  assert.ok((await fs.readdir(join(fetched, 'pg_wal'))).some((n) => SEGMENT.test(n)));
  await verify(fetched);

  const none = join(root, 'none');
  const r2 = await runPgbb(['backup', ...conn(), '-D', none, '-c', 'fast', '-X', 'none']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stderr, /WAL is not included \(-X none\)/);
  assert.deepEqual((await fs.readdir(join(none, 'pg_wal'))).filter((n) => SEGMENT.test(n)), []);
  await verify(none, ['-n']); // --no-parse-wal: there is none to parse
  await assert.rejects(verify(none), /WAL/);
  assert.equal(await slotCount(), 0);
});
