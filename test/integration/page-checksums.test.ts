/**
 * Page checksums end to end against a real PostgreSQL 15 with one byte
 * corrupted in the middle of one page of a table:
 *   server side — `pgbb backup` fails naming file and block, leaves no target,
 *     and succeeds with --no-verify-checksums;
 *   client side — pageChecksumVerify over the same data directory read from
 *     disk (test/support/dir-events.ts) finds exactly that block, agrees
 *     with pg_checksums, and passes the cluster before the corruption.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN } from '../support/cluster';
import { CommandError, run } from '../support/run';
import { runPgbb } from '../support/pgbb';
import { dirEvents } from '../support/dir-events';
import { useSampleServer } from '../support/sample-server';
import { flipByte } from '../support/data-dir';
import { ChecksumError, type BackupEvent, type WarningEvent } from '../../src/index';
import { pageChecksumVerify, type PageChecksumResult } from '../../transforms/page-checksum-verify';

const BS = 8192;
const BAD_BLOCK = 3;

/** The table's main fork, relative to the data directory, e.g. base/5/16384. */
let relPath: string;
let cleanRun: Awaited<ReturnType<typeof verifyDir>>;

// Every statement logged: the -j test counts its re-reads of the bad page.
const pg = useSampleServer({ sampleData: false, conf: { log_statement: 'all' }, setup: prepareVictim });

/** The corrupted cluster, started once for the server-side tests. */
let corrupted: Cluster | undefined;
async function startCorrupted(): Promise<Cluster> {
  if (!corrupted) {
    const c = (corrupted = await Cluster.startExisting(pg.cluster.dataDir));
    pg.onCleanup(() => c.destroy());
  }
  return corrupted;
}

/** The table `victim`, the client-side run over the clean stopped cluster, then one corrupted byte. */
async function prepareVictim(cluster: Cluster): Promise<void> {
  await cluster.query(`CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 5000) g`);
  await cluster.query(`CHECKPOINT`);
  const [row] = await cluster.query<{ path: string; pages: number }>(
    `SELECT pg_relation_filepath('victim') AS path, pg_relation_size('victim') / ${BS} AS pages`,
  );
  relPath = row.path;
  assert.ok(Number(row.pages) > BAD_BLOCK + 1, `victim has ${row.pages} pages`);
  await cluster.stop();

  // Client side, before the corruption: the whole cluster verifies.
  cleanRun = await verifyDir(cluster.dataDir);

  // One byte in the middle of block 3 flips; its stored checksum no longer matches.
  await flipByte(join(cluster.dataDir, relPath), BAD_BLOCK * BS + BS / 2);
}

/** The stopped cluster's latest checkpoint REDO: every page on disk is older, as with a backup started then. */
async function redoLsn(dataDir: string): Promise<string> {
  const { stdout } = await run(join(DEBIAN_PG15_BIN, 'pg_controldata'), [dataDir], { asPostgres: true, env: { LC_ALL: 'C' } });
  const m = /^Latest checkpoint's REDO location:\s+(\S+)$/m.exec(stdout);
  assert.ok(m, stdout);
  return m[1];
}

async function verifyDir(dataDir: string, chunkSize?: number): Promise<{ result: PageChecksumResult; error: unknown; warnings: WarningEvent[] }> {
  const v = pageChecksumVerify();
  const warnings: WarningEvent[] = [];
  let error: unknown = null;
  await pipeline(
    dirEvents(dataDir, { startLsn: await redoLsn(dataDir), chunkSize }),
    v,
    new Writable({
      objectMode: true,
      write(ev: BackupEvent, _e, cb) {
        if (ev.type === 'warning') warnings.push(ev);
        cb();
      },
    }),
  ).catch((err) => (error = err));
  return { result: v.result, error, warnings };
}

test('client side: the uncorrupted cluster verifies, every relation file and page considered', () => {
  assert.equal(cleanRun.error, null);
  assert.deepEqual(cleanRun.warnings, []);
  assert.equal(cleanRun.result.failureCount, 0);
  assert.ok(cleanRun.result.filesChecked > 200, `${cleanRun.result.filesChecked} files`);
  assert.ok(cleanRun.result.pagesChecked > 500, `${cleanRun.result.pagesChecked} pages`);
});

test('client side: exactly the corrupted block fails, at any chunk size, and pg_checksums agrees', async () => {
  const want = new RegExp(`^checksum verification failed in file "\\./${relPath}", block ${BAD_BLOCK}: calculated [0-9A-F]+ but expected [0-9A-F]+$`);
  for (const chunkSize of [32 * 1024, 5000]) {
    const r = await verifyDir(pg.cluster.dataDir, chunkSize);
    assert.ok(r.error instanceof ChecksumError, String(r.error));
    assert.deepEqual(
      r.result.failures.map((f) => [f.path, f.block]),
      [[relPath, BAD_BLOCK]],
      `chunks of ${chunkSize}`,
    );
    assert.match(r.result.failures[0].message, want);
    assert.deepEqual(r.warnings.map((w) => w.code), ['checksum']);
    assert.equal(r.result.pagesChecked, cleanRun.result.pagesChecked);
  }
  const pgc = await run(join(DEBIAN_PG15_BIN, 'pg_checksums'), ['--check', '-D', pg.cluster.dataDir], { asPostgres: true }).then(
    () => assert.fail('pg_checksums should find the corrupt block'),
    (err: CommandError) => err.stdout + err.stderr,
  );
  assert.match(pgc, new RegExp(`file "[^"]*/${relPath}", block ${BAD_BLOCK}: calculated checksum`));
  assert.match(pgc, /Bad checksums:\s+1\b/);
});

test('server side: pgbb backup fails naming the file and block, and removes its target; -k backs up anyway', async () => {
  const restarted = await startCorrupted();
  const root = await pg.scratch('pgbb-checksum-');
  const conn = pg.conn(restarted);

  const target = join(root, 'data');
  const r = await runPgbb(['backup', ...conn, '-D', target, '-c', 'fast']);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.ok(lines[0].startsWith('pgbb: error: '), r.stderr);
  assert.match(lines[0], new RegExp(`checksum verification failed in file "\\./${relPath}", block ${BAD_BLOCK}: calculated [0-9A-F]+ but expected [0-9A-F]+`));
  assert.ok(!existsSync(target), 'a backup holding a corrupt page must not be left looking valid');

  const tarTarget = join(root, 'tar');
  const t = await runPgbb(['backup', ...conn, '-D', tarTarget, '-F', 'tar', '-c', 'fast']);
  assert.equal(t.code, 1, t.stderr);
  assert.match(t.stderr, new RegExp(`pgbb: error: .*"\\./${relPath}", block ${BAD_BLOCK}:`));
  assert.ok(!existsSync(tarTarget), 'nor in tar format');

  const target2 = join(root, 'data-k');
  const k = await runPgbb(['backup', ...conn, '-D', target2, '-c', 'fast', '--no-verify-checksums']);
  assert.equal(k.code, 0, k.stderr);
  assert.equal(k.stderr, '');
  assert.ok(existsSync(join(target2, relPath)));
});

test('-j 2: the page read over SQL fails client-side verification, is read once more, and the backup fails naming it', async () => {
  const restarted = await startCorrupted();
  const root = await pg.scratch('pgbb-checksum-j-');
  const target = join(root, 'data');
  const logBefore = (await fs.readFile(restarted.logFile, 'utf8')).length;
  const r = await runPgbb(['backup', ...pg.conn(restarted), '-D', target, '-j', '2', '-c', 'fast']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^pgbb: error: .*checksum verification failed in file "\\./${relPath}", block ${BAD_BLOCK}: calculated [0-9A-F]+ but expected [0-9A-F]+.*\n$`));
  assert.ok(!existsSync(target), 'no target left looking valid');
  const log = (await fs.readFile(restarted.logFile, 'utf8')).slice(logBefore);
  const rereads = log.split('\n').filter((l) => l.includes(`pg_read_binary_file('${relPath}', ${BAD_BLOCK * BS}, ${BS}, true)`));
  assert.equal(rereads.length, 1, `one re-read of the bad page:\n${rereads.join('\n')}`);
});
