/**
 * `pgbb standby` through a loopback TCP proxy (test/support/tcp-proxy.ts)
 * that is cut — every socket destroyed, the port closed until restored — the
 * way a network fails: midway through the base backup (the run fails in one
 * line and leaves DATADIR resumable; the run through the restored proxy
 * completes it rather than starting over), and while the run waits for the
 * started standby to stream (it waits on and exits 0 once the link is back;
 * or, with a short --wait-timeout, fails in one line and the next run finds
 * the standby running and waits for it). Along the way, what --json and -P
 * show in each phase: backup progress, start, waiting, streaming and lag.
 * The primary is Debian's PostgreSQL 15; versions.test.ts runs the kill -9
 * and ended-connection cases on every major.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { DEBIAN_PG15_BIN, fillSampleData, type Cluster } from '../support/cluster';
import { spawnPgbb, waitFor, type SpawnedPgbb } from '../support/failure-helpers';
import { run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { testScratch } from '../support/scratch';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { assertResumable, assertSameData, postmasterPid, scratchStandbyPlace, standbyEvents, standbyResult, type StandbyPlace } from '../support/standby';

const scratch = testScratch();
let primary: Cluster;
let proxy: TcpProxy;
let tsLocation: string;
/** The standby the first test leaves running, for the second. */
let left: StandbyPlace | undefined;

before(async () => {
  primary = await scratch.cluster();
  await fillSampleData(primary, { scale: 2 });
  // Hint bits settled, so that the completing run finds the cut run's chunks as they were.
  await primary.query('VACUUM FREEZE');
  await primary.query('CHECKPOINT');
  [{ tsLocation }] = await primary.query<{ tsLocation: string }>(`SELECT pg_tablespace_location(oid) AS "tsLocation" FROM pg_tablespace WHERE spcname = 'pgbb_ts'`);
  proxy = await startTcpProxy({ host: primary.host, port: primary.port });
  scratch.defer(() => proxy.close());
});

const place = (name: string) => scratchStandbyPlace(scratch, name);

/** Through the proxy: pgbb's connections, and (primary_conninfo) the standby's. */
const viaProxy = (p: StandbyPlace, extra: string[]) => [
  'standby', '-d', `host=${proxy.host} port=${proxy.port} user=postgres`, '-D', p.dataDir, '-T', `${tsLocation}=${p.tablespace}`,
  '-c', 'fast', '-o', p.options, ...extra,
];

/** Resolves once a line of the child's stderr matches (rejects if it exits first). */
function lineSeen(run: SpawnedPgbb, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        run.child.stderr!.off('data', onData);
        resolve(line);
      }
    };
    run.child.stderr!.on('data', onData);
    void run.done.then((r) => reject(new Error(`pgbb ended before a line matched ${re}:\n${r.stderr}`)));
  });
}

/** Regular files under dir (not following links), by inode. */
async function inodes(dir: string, into = new Map<string, number>()): Promise<Map<string, number>> {
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await inodes(p, into);
    else if (e.isFile()) into.set(p, (await fs.lstat(p)).ino);
  }
  return into;
}

/**
 * The `waiting` messages a run printed, checked to be a progress record and
 * not a flood: a line when the WAL receiver's status changes, else one per 5 s.
 */
function assertWaitingPaced(messages: string[]): void {
  const seen = messages.map((m) => {
    const w = /waiting for the standby to stream: WAL receiver (\w+) \((\d+) s\)$/.exec(m);
    assert.ok(w, m);
    return { status: w[1], s: Number(w[2]) };
  });
  for (let i = 1; i < seen.length; i++) {
    if (seen[i].status === seen[i - 1].status) assert.ok(seen[i].s - seen[i - 1].s >= 4, `two "${seen[i].status}" lines ${seen[i].s - seen[i - 1].s} s apart:\n${messages.join('\n')}`);
  }
}

const sameData = (p: StandbyPlace) => assertSameData(primary, p);

test('standby through a proxy cut midway through the backup: one line, non-zero, resumable; through the restored proxy the next run completes it, waits out a cut while the standby starts, and reports each phase in --json', async (t) => {
  const p = await place('cut');
  const args = (extra: string[]) => viaProxy(p, ['--create-slot', 'pgbb_cut', '--json', ...extra]);

  // 1. Cut once the server has sent 32 MB of the backup (of ~75 MB; throttled, so that is its middle); the proxy stays down.
  const cutRun = spawnPgbb(args(['-r', '8M']));
  await waitFor('the backup to send 32 MB', async () => {
    const rows = await primary.query<{ sent: string }>('SELECT backup_streamed::text AS sent FROM pg_stat_progress_basebackup');
    return rows.some((r) => Number(r.sent) >= 32 << 20);
  }, 120_000);
  await proxy.cut();
  const cut = await cutRun.done;
  assert.equal(cut.code, 1, cut.stderr);
  const cutEvents = standbyEvents(cut.stderr); // every line is JSON: no stack trace
  const errors = cutEvents.filter((e) => e.event === 'error');
  assert.equal(errors.length, 1, cut.stderr);
  t.diagnostic(`the cut run: ${errors[0].message}`);
  // Whichever of its two connections (backup, WAL) notices first names it.
  assert.match(errors[0].message, new RegExp(`^(WAL streaming connection lost|connection to server at "127\\.0\\.0\\.1:${proxy.port}" lost): `));
  assert.ok(errors[0].message.endsWith(`; "${p.dataDir}" is left resumable: run the same pgbb standby again to complete it`), errors[0].message);
  assert.ok(!cutEvents.some((e) => e.event === 'result'), 'no result from a run that was cut off');
  assertResumable(p.dataDir, 'after the cut');
  const before = await inodes(p.dataDir);
  assert.ok([...before.keys()].filter((f) => f.includes(`${join(p.dataDir, 'base')}/`)).length > 100, 'the cut run wrote files under base/');

  // 2. Link back; this run is cut again as it starts the standby, and the link restored once it is seen waiting.
  await proxy.restore();
  const accepted = proxy.accepted;
  const resume = spawnPgbb(args([]));
  await lineSeen(resume, /"code":"start"/);
  await proxy.cut();
  await lineSeen(resume, /"code":"waiting"/);
  await proxy.restore();
  const r = await resume.done;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(proxy.accepted > accepted, 'the run went through the proxy');

  // Completed, not started over: most of what it received it found there already, and the files kept their inodes.
  const res = standbyResult(r.stderr);
  assert.equal(res.found, 'incomplete');
  assert.equal(res.status, 'streaming');
  t.diagnostic(`the completing run received ${res.bytesReceived} bytes, wrote ${res.bytesWritten} (${res.chunksUnchanged} chunks unchanged, ${res.chunksChanged} changed)`);
  assert.ok(res.chunksUnchanged > 5 && res.bytesWritten < res.bytesReceived * 0.8, `the completing run rewrote too much: ${JSON.stringify(res)}`);
  const after = await inodes(p.dataDir);
  const kept = [...before].filter(([f, ino]) => after.get(f) === ino).length;
  assert.ok(kept >= before.size - 5, `${before.size - kept} of the ${before.size} files the cut run wrote were replaced`);

  // Each phase in --json, in order: backup progress, start, waiting, streaming with its lag, the result with it too.
  const ev = standbyEvents(r.stderr);
  const at = (f: (e: Record<string, any>) => boolean) => ev.findIndex(f);
  const progress = at((e) => e.event === 'progress' && e.done > 0);
  const start = at((e) => e.code === 'start');
  const waiting = at((e) => e.code === 'waiting');
  const streaming = at((e) => e.code === 'streaming');
  assert.ok(progress >= 0 && progress < start && start < waiting && waiting < streaming, `phases out of order: ${[progress, start, waiting, streaming]}`);
  assertWaitingPaced(ev.filter((e) => e.code === 'waiting').map((e) => e.message));
  assert.ok(Number.isInteger(ev[streaming].replayLagBytes) && ev[streaming].replayLagBytes >= 0, JSON.stringify(ev[streaming]));
  assert.deepEqual(ev[ev.length - 1], res, 'the result is the last line');
  assert.ok(Number.isInteger(res.replayLagBytes) && res.replayLagBytes >= 0 && typeof res.replayLsn === 'string', JSON.stringify(res));
  const [slot] = await primary.query(`SELECT active FROM pg_replication_slots WHERE slot_name = 'pgbb_cut'`);
  assert.deepEqual(slot, { active: true });

  await primary.query('UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid % 40 = 0');
  await sameData(p);
  left = p;
});

test('standby -P --rebuild cut while the standby starts: lines for the backup, start and waiting, then one error line; the next run finds it running and says when it streams and how far behind', async () => {
  assert.ok(left, 'the first test left a standby');
  const p = left;
  await primary.query('UPDATE pgbench_accounts SET abalance = abalance - 2 WHERE aid <= 3000');
  const rebuild = spawnPgbb(viaProxy(p, ['-S', 'pgbb_cut', '--rebuild', '-P', '--wait-timeout', '8']));
  await lineSeen(rebuild, /^pgbb: standby: starting the standby/);
  await proxy.cut();
  const r = await rebuild.done;
  await proxy.restore();
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  const index = (re: RegExp) => lines.findIndex((l) => re.test(l));
  const backup = index(/^pgbb: [\d.]+ (kB|MB) of [\d.]+ (kB|MB) \(\d+%\), .*done in/);
  const start = index(/^pgbb: standby: starting the standby \(pg_ctl start, log in .*\)$/);
  const waiting = index(/^pgbb: standby: waiting for the standby to stream: WAL receiver \w+ \(\d+ s\)$/);
  assert.ok(index(/^pgbb: standby: stopping the standby to rebuild it$/) >= 0, r.stderr);
  assert.ok(backup >= 0 && backup < start && start < waiting, `phases out of order (${[backup, start, waiting]}):\n${r.stderr}`);
  assert.equal(lines.filter((l) => l.startsWith('pgbb: error:')).length, 1, r.stderr);
  const waitingLines = lines.filter((l) => l.startsWith('pgbb: standby: waiting'));
  assert.ok(waitingLines.length >= 2, `8 s of waiting, and not a line at 0 s and 5 s:\n${r.stderr}`);
  assertWaitingPaced(waitingLines);
  assert.match(lines[lines.length - 1], /^pgbb: error: the standby in ".*" runs but does not stream after 8 s: its WAL receiver's status is "\w+"; see its log$/);
  assert.ok(lines.every((l) => l.startsWith('pgbb: ')), `a line that is not pgbb's:\n${r.stderr}`);
  assert.ok(postmasterPid(p.dataDir), 'the standby was left running');

  const again = await runPgbb(viaProxy(p, ['-S', 'pgbb_cut', '-P']));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /^pgbb: standby: ".*" is a running standby$/m);
  assert.match(again.stderr, /^pgbb: standby: the standby streams: replayed up to [0-9A-F]+\/[0-9A-F]+, \d+ bytes behind the primary$/m);
  assert.match(again.stderr, /^pgbb: standby ".*" streams \(\d+ bytes of replay lag; [\d.]+ s\)$/m);
  await sameData(p);
  // Stopped cleanly (the primary's pg_ctl) so that the file's cleanup has nothing left to kill.
  await run(join(DEBIAN_PG15_BIN, 'pg_ctl'), ['stop', '-D', p.dataDir, '-m', 'fast', '-w'], { asPostgres: true });
});
