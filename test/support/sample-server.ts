/**
 * useSampleServer: the setup that integration tests against one real
 * PostgreSQL 15 share, registered as node:test hooks.
 *
 *   const pg = useSampleServer({ sampleData: { scale: 3 }, fingerprint: true, setup: async (cluster) => … });
 *   const { conn, scratch, verify, startAndCompare } = pg;   // plain functions, no `this`
 *   test('…', async () => { … pg.cluster … pg.tsOid … });
 *
 * In:  options — `sampleData` (fillSampleData; default on, `false` leaves
 *      the cluster empty), `fingerprint` (default off: it reads every row,
 *      which sets hint bits and so writes WAL that tests not comparing data
 *      need not cause), `conf` (extra postgresql.conf settings), and `setup`:
 *      the file's own preparation of the server, run in the same before()
 *      hook after the sample data and before the fingerprint. It goes there,
 *      not in a before() of the test file, because node 20 starts root-level
 *      before() hooks together rather than one after another: a second hook
 *      would find no cluster yet.
 * Out: a SampleServer whose fields are filled by the before() hook it
 *      registers: `cluster`; `fingerprint` (when asked for); `tsOid`,
 *      `tsLocation` of the sample tablespace `pgbb_ts` (when sample data with
 *      a tablespace was made). Reading a field that was not set up throws,
 *      naming it, rather than comparing against undefined.
 * Cleanup: one after() hook runs every registered cleanup (the cluster,
 *      scratch directories, whatever a test adds with onCleanup) newest first,
 *      each failure ignored so the rest still run.
 * Errors: setup failures propagate from before() (node:test then fails every
 *      test of the file); verify/withStarted/startAndCompare reject or fail an
 *      assertion like the inline code they replace.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { DirectorySink, ReplicationSource, type ReplicationSourceOptions } from '../../src/index';
import { Cluster, DEBIAN_PG15_BIN, dataFingerprint, fillSampleData, makeTempDir, type ConfValue, type SampleDataOptions } from './cluster';
import { run } from './run';
import { SAMPLE_TABLESPACE } from './sample-data';

export interface SampleServerOptions {
  /** fillSampleData after create; an object is passed on (e.g. { scale: 3 }). Default true. */
  sampleData?: boolean | SampleDataOptions;
  /** dataFingerprint after the sample data, for startAndCompare. Default false. */
  fingerprint?: boolean;
  /** Extra postgresql.conf settings for Cluster.create. */
  conf?: Record<string, ConfValue>;
  /** The file's own preparation, in the same before() hook (see the top of this file). */
  setup?: (cluster: Cluster) => Promise<unknown>;
}

export interface SampleServer {
  readonly cluster: Cluster;
  readonly fingerprint: string;
  readonly tsOid: string;
  readonly tsLocation: string;
  /** pgbb's `-d` arguments for a server (default: this one). */
  conn(c?: Cluster): string[];
  /** A ReplicationSource on this server with checkpoint 'fast' and WAL fetched (what these tests were written for; the library default is now stream); `extra` wins. */
  source(extra?: ReplicationSourceOptions): ReplicationSource;
  /** A DirectorySink writing root/data, the sample tablespace mapped to root/ts, no fsync. */
  directorySink(root: string): DirectorySink;
  /** A new temp dir, removed in after(). */
  scratch(prefix: string): Promise<string>;
  /** Runs in after(), before everything registered earlier. */
  onCleanup(fn: () => Promise<unknown>): void;
  /** Debian's pg_verifybackup -q [extra…] dir. */
  verify(dir: string, extra?: string[]): Promise<void>;
  /** Starts a restored data directory, runs fn on it, and always destroys it. */
  withStarted<T>(dataDir: string, fn: (restored: Cluster) => Promise<T>): Promise<T>;
  /** withStarted, asserting the copy's dataFingerprint equals the server's. */
  startAndCompare(dataDir: string): Promise<void>;
}

export function useSampleServer(opts: SampleServerOptions = {}): SampleServer {
  const cleanup: Array<() => Promise<unknown>> = [];
  let cluster: Cluster | undefined;
  let fingerprint: string | undefined;
  let ts: { oid: string; loc: string } | undefined;

  before(async () => {
    const c = await Cluster.create(opts.conf ? { conf: opts.conf } : {});
    cluster = c;
    cleanup.push(() => c.destroy());
    const sample = opts.sampleData ?? true;
    const sampleOpts = sample === true ? {} : sample;
    if (sampleOpts) await fillSampleData(c, sampleOpts);
    await opts.setup?.(c);
    if (opts.fingerprint) fingerprint = await dataFingerprint(c);
    if (sampleOpts && (sampleOpts.tablespace ?? true)) {
      [ts] = await c.query<{ oid: string; loc: string }>(
        `SELECT oid::text AS oid, pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = '${SAMPLE_TABLESPACE}'`,
      );
    }
  });

  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  const set = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`useSampleServer: ${what} is not set up (before() not run, or not asked for in the options)`);
    return value;
  };
  const server = (): Cluster => set(cluster, 'cluster');

  const withStarted = async <T>(dataDir: string, fn: (restored: Cluster) => Promise<T>): Promise<T> => {
    const restored = await Cluster.startExisting(dataDir);
    try {
      return await fn(restored);
    } finally {
      await restored.destroy();
    }
  };

  return {
    get cluster() {
      return server();
    },
    get fingerprint() {
      return set(fingerprint, 'fingerprint');
    },
    get tsOid() {
      return set(ts, 'the sample tablespace').oid;
    },
    get tsLocation() {
      return set(ts, 'the sample tablespace').loc;
    },
    conn: (c = server()) => ['-d', `host=${c.host} port=${c.port} user=postgres`],
    source: (extra = {}) =>
      new ReplicationSource({ connection: { host: server().host, port: server().port, user: 'postgres' }, checkpoint: 'fast', wal: 'fetch', ...extra }),
    directorySink: (root) =>
      new DirectorySink({ target: join(root, 'data'), tablespaceMapping: { [set(ts, 'the sample tablespace').loc]: join(root, 'ts') }, sync: false }),
    scratch: async (prefix) => {
      const dir = await makeTempDir(prefix);
      cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
      return dir;
    },
    onCleanup: (fn) => void cleanup.push(fn),
    verify: async (dir, extra = []) => {
      await run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', ...extra, dir]);
    },
    withStarted,
    startAndCompare: (dataDir) =>
      withStarted(dataDir, async (restored) => {
        assert.equal(await dataFingerprint(restored), set(fingerprint, 'fingerprint'));
      }),
  };
}
