/**
 * `-r` paces the WAL connection too: one token bucket for everything a
 * backup moves. Measured from the server's side, against a real
 * PostgreSQL 15 with pgbench writing WAL while the backup runs: what the
 * base backup's walsender streamed (pg_stat_progress_basebackup) plus what
 * the WAL walsender sent (pg_stat_replication.sent_lsn), over wall time.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { runPgbb } from '../support/pgbb';
import { useSampleServer } from '../support/sample-server';
import { parseLsn } from '../../src/codec/lsn';

const KiB = 1024;
const SEG = 16n * 1024n * 1024n;
const pg = useSampleServer({ sampleData: false, setup: (cluster) => cluster.pgbench(['-i', '-q', '-s', '1', 'postgres']) });
const { conn, scratch } = pg;

interface Sample {
  t: number;
  data: number;
  /** The WAL walsender's sent position, as a byte number. */
  sent: bigint | null;
}

test('-r 2048 with pgbench writing WAL: data + WAL over wall time stays at the rate (±15%), all along and over the whole run', async (t) => {
  const root = await scratch('pgbb-walrate-');
  const rate = 2048 * KiB;
  const writing = pg.cluster.pgbench(['-c', '2', '-R', '120', '-T', '25', 'postgres']);
  await sleep(1000);
  const began = performance.now();
  const backup = runPgbb(['backup', ...conn(), '-D', `${root}/data`, '-c', 'fast', '-r', '2048', '-N', '--json']);
  let running = true;
  void backup.finally(() => (running = false));
  const samples: Sample[] = [];
  while (running) {
    const [r] = await pg.cluster.query<{ data: string | null; sent: string | null }>(
      `SELECT (SELECT max(backup_streamed) FROM pg_stat_progress_basebackup)::text AS data,
              (SELECT max(sent_lsn) FROM pg_stat_replication WHERE state IN ('catchup', 'streaming'))::text AS sent`,
    );
    samples.push({ t: (performance.now() - began) / 1000, data: Number(r.data ?? 0), sent: r.sent ? parseLsn(r.sent) : null });
    await sleep(100);
  }
  const seconds = (performance.now() - began) / 1000;
  const result = await backup;
  assert.equal(result.code, 0, result.stderr);
  const line = result.stderr.split('\n').find((l) => l.includes('"event":"result"'));
  assert.ok(line, result.stderr);
  const { startLsn, endLsn } = JSON.parse(line) as { startLsn: string; endLsn: string };
  const walStart = parseLsn(startLsn) - (parseLsn(startLsn) % SEG);
  const data = Math.max(...samples.map((s) => s.data));
  const wal = Number(parseLsn(endLsn) - walStart);
  const total = (data + wal) / seconds;
  t.diagnostic(
    `data ${(data / 1048576).toFixed(1)} MiB + WAL ${(wal / 1048576).toFixed(1)} MiB in ${seconds.toFixed(1)} s = ` +
      `${(total / KiB).toFixed(0)} kB/s (limit 2048)`,
  );
  assert.ok(wal > 3 * 1048576, `pgbench wrote enough WAL to matter: ${wal} bytes`);
  assert.ok(Math.abs(total - rate) <= rate * 0.15, `whole run: ${(total / KiB).toFixed(0)} kB/s`);
  // All along, while the base backup runs: between a sample a few seconds in (the pipeline's and
  // the sockets' buffers are full by then, and stay so) and the last one before the base backup ended.
  const during = samples.filter((s) => s.sent !== null && s.data > 0);
  const from = during.find((s) => s.t >= 4);
  const to = during[during.length - 1];
  assert.ok(from && to && to.t - from.t > 8, `a long enough base backup: ${from?.t} – ${to?.t} s`);
  const steady = (to.data - from.data + Number(to.sent! - from.sent!)) / (to.t - from.t);
  if (process.env.PGBB_WALRATE_DEBUG) for (const s of samples.filter((_, i) => i % 5 === 0)) t.diagnostic(`${s.t.toFixed(1)} s: data ${(s.data / 1048576).toFixed(2)} MiB, WAL ${s.sent === null ? '-' : (Number(s.sent - walStart) / 1048576).toFixed(2)} MiB`);
  t.diagnostic(
    `${from.t.toFixed(1)} – ${to.t.toFixed(1)} s: data ${((to.data - from.data) / 1048576).toFixed(1)} MiB + WAL ` +
      `${(Number(to.sent! - from.sent!) / 1048576).toFixed(1)} MiB = ${(steady / KiB).toFixed(0)} kB/s`,
  );
  assert.ok(Number(to.sent! - from.sent!) > 2 * 1048576, 'WAL streamed meanwhile');
  assert.ok(steady <= rate * 1.15, `data + WAL ran at ${(steady / KiB).toFixed(0)} kB/s while the base backup ran`);
  await writing;
});
