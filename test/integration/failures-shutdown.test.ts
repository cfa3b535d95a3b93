/**
 * The server goes away mid-backup: a real PostgreSQL 15 (pgbench scale 1,
 * ~40 MB with WAL) is stopped with `pg_ctl -m immediate` (and `-m fast`)
 * while a throttled backup is in flight. pgbb must notice at once, print one
 * line naming the lost connection (code `connection`), exit 1, and remove
 * the target it created; the restarted server holds no slot.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, fillSampleData, makeTempDir } from '../support/cluster';
import { run } from '../support/run';
import { backupStreaming, jsonError, reapChildren, serverSide, spawnPgbb, waitFor } from '../support/failure-helpers';

let first: Cluster;
/** The cluster currently running on first's data directory (restarted after each stop). */
let current: Cluster;
const restarted: Cluster[] = [];
let root: string;

before(async () => {
  first = await Cluster.create();
  current = first;
  await fillSampleData(first, { scale: 1, tablespace: false });
  root = await makeTempDir('pgbb-fail-shutdown-');
});

after(async () => {
  await reapChildren();
  for (const c of restarted.reverse()) await c.destroy().catch(() => {});
  await first.destroy().catch(() => {}); // removes the data directory too
  await fs.rm(root, { recursive: true, force: true });
});

for (const { mode, wal } of [
  { mode: 'immediate', wal: 'stream' },
  { mode: 'immediate', wal: 'fetch' },
  { mode: 'fast', wal: 'stream' },
] as const) {
  test(`pg_ctl stop -m ${mode} during a throttled -X ${wal} backup: one line, code connection, exit 1 within seconds, target removed`, async (t) => {
    const target = join(root, `${mode}-${wal}`);
    const c = current;
    const p = spawnPgbb(['backup', '-d', `host=${c.host} port=${c.port} user=postgres`, '-D', target, '-c', 'fast', '-r', '2M', '-X', wal, '--json']);
    await waitFor('the server to stream files', () => backupStreaming(c));
    const t0 = performance.now();
    await run(join(c.binDir, 'pg_ctl'), ['stop', '-D', c.dataDir, '-m', mode, '-w'], { asPostgres: true });
    const r = await p.done;
    const ms = Math.round(r.endedAt - t0);
    assert.equal(r.code, 1, r.stderr);
    const e = jsonError(r.stderr);
    assert.equal(e.code, 'connection', e.message);
    assert.match(e.message, /^(WAL streaming connection lost: |connection to server at "127\.0\.0\.1:\d+" lost: )/);
    assert.ok(!existsSync(target), 'target removed');
    // pg_ctl -w returns once the server is down; pgbb follows within a throttle step.
    assert.ok(ms < 5000, `pgbb exited ${ms} ms after the stop began`);
    t.diagnostic(`-m ${mode} -X ${wal}: pgbb exited ${ms} ms after pg_ctl stop began: ${e.message}`);

    await c.stop(); // the harness forgets the postmaster pg_ctl already stopped
    current = await Cluster.startExisting(first.dataDir);
    restarted.push(current);
    assert.deepEqual((await serverSide(current)).slots, [], 'no slot survives the restart');
  });
}
