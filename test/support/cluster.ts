/**
 * Real PostgreSQL servers for integration tests, benchmarks and the demo.
 *
 *   Cluster.create()            temp dir → initdb → configure → pg_ctl start
 *   Cluster.startExisting(dir)  a restored backup or stopped data dir → start
 *   c.query / c.psql / c.pgbench / c.makeDir
 *   c.stop() / c.destroy()      pg_ctl stop, else kill by pid; rm -rf baseDir
 *
 * Layout of baseDir (mkdtemp under os.tmpdir(), owned by the postgres OS user
 * when we are root): data/ (unless startExisting), sock/ (unix socket),
 * server.log (pg_ctl -l), and whatever makeDir() adds (tablespace locations).
 *
 * Servers listen on 127.0.0.1 only, on a free port chosen at each start and
 * passed on the postmaster command line (-p -h -k), so a copied
 * postgresql.conf's port, addresses and socket directory never matter.
 * pg_hba trusts local and loopback connections, `replication` included
 * (see data-dir.ts for the files written).
 *
 * Errors: every failure names the command and carries its stderr; a failed
 * start also carries the tail of server.log. A server that pg_ctl cannot stop
 * is killed by pid, and every server still running when the process exits or
 * gets SIGINT/SIGTERM is sent SIGQUIT (see reaper.ts).
 */

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { configureNew, handOver, pgVersionOf, type ConfValue } from './data-dir';
import { embeddedBinDir } from './embedded';
import { forgetServer, isAlive, killServer, registerServer, waitForExit } from './reaper';
import { chownToPostgres, commandLine, isRoot, makeTempDir, POSTGRES_USER, run } from './run';

export type { ConfValue } from './data-dir';
export { embeddedBinDir } from './embedded';
export { chownToPostgres, makeTempDir } from './run';
export { dataFingerprint, fillSampleData, type SampleDataOptions } from './sample-data';

export const DEBIAN_PG15_BIN = '/usr/lib/postgresql/15/bin';

/** Server programs of a major: Debian's for 15, the embedded package's for 14, 16, 17 and 18. */
export function serverBinDir(major: number): string {
  return major === 15 ? DEBIAN_PG15_BIN : embeddedBinDir(major);
}

export interface ClusterOptions {
  /** Directory holding initdb, pg_ctl and postgres. Default DEBIAN_PG15_BIN. */
  binDir?: string;
  /** initdb -k. Default true: backups are checked against page checksums. */
  dataChecksums?: boolean;
  /** Extra postgresql.conf settings, e.g. { fsync: false }; they win over ours. */
  conf?: Record<string, ConfValue>;
  initdbArgs?: string[];
  /**
   * Run the postmaster in this network namespace (`ip netns exec`, so root
   * only), listening on `address` instead of 127.0.0.1; pg_hba also trusts
   * the namespace's directly connected subnets (samenet). For the bench's
   * delayed link (bench/support/delayed-link.ts).
   */
  netns?: { name: string; address: string };
}

const CREATE_TIMEOUT_S = 60;
/** Recovery from a restored backup replays WAL before accepting connections. */
const START_EXISTING_TIMEOUT_S = 90;

export class Cluster {
  readonly host: string;
  private currentPort = 0;
  private postmasterPid: number | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly binDir: string,
    readonly baseDir: string,
    readonly dataDir: string,
    private readonly netns?: { name: string; address: string },
  ) {
    this.host = netns?.address ?? '127.0.0.1';
  }

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const baseDir = await makeTempDir('pgbb-pg-');
    if (opts.netns && !isRoot()) throw new Error('Cluster.create: a network namespace needs root');
    const c = new Cluster(opts.binDir ?? DEBIAN_PG15_BIN, baseDir, join(baseDir, 'data'), opts.netns);
    try {
      await c.makeDir('sock');
      await run(
        join(c.binDir, 'initdb'),
        [
          '-D', c.dataDir, '-U', POSTGRES_USER, '-A', 'trust', '-E', 'UTF8', '--locale=C',
          '--no-sync', '--no-instructions',
          // initdb of 18 turns checksums on unless told not to; older ones only when asked.
          ...((opts.dataChecksums ?? true) ? ['--data-checksums'] : (await binMajor(c.binDir)) >= 18 ? ['--no-data-checksums'] : []),
          ...(opts.initdbArgs ?? []),
        ],
        { asPostgres: true, cwd: baseDir },
      );
      await configureNew(c.dataDir, opts.conf, opts.netns ? ['samenet'] : []);
      await c.start(CREATE_TIMEOUT_S);
    } catch (err) {
      await c.destroy().catch(() => {});
      throw err;
    }
    return c;
  }

  /**
   * Start a data directory we did not create: a restored backup or a stopped
   * cluster. Its files are handed to postgres (tablespace targets included)
   * and its mode set to 0700, as the postmaster demands. The binaries default
   * to the ones matching PG_VERSION (serverBinDir). destroy()
   * removes only the harness's own temp dir, never dataDir.
   */
  static async startExisting(dataDir: string, opts: { binDir?: string } = {}): Promise<Cluster> {
    const abs = resolve(dataDir);
    const major = Number(await pgVersionOf(abs));
    const binDir = opts.binDir ?? (major ? serverBinDir(major) : DEBIAN_PG15_BIN);
    await handOver(abs);
    const c = new Cluster(binDir, await makeTempDir('pgbb-pg-'), abs);
    try {
      await c.makeDir('sock');
      if (isRoot()) {
        await run('test', ['-r', join(abs, 'PG_VERSION')], { asPostgres: true }).catch((err) => {
          throw new Error(
            `the postgres OS user cannot read ${abs}/PG_VERSION; every parent directory must be ` +
              `traversable by it (restore into a directory from makeTempDir())`,
            { cause: err },
          );
        });
      }
      await c.start(START_EXISTING_TIMEOUT_S);
    } catch (err) {
      await c.destroy().catch(() => {});
      throw err;
    }
    return c;
  }

  get port(): number {
    return this.currentPort;
  }

  get logFile(): string {
    return join(this.baseDir, 'server.log');
  }

  /** The postmaster pid from postmaster.pid, or undefined when no server runs. */
  get pid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  connectionString(db = 'postgres'): string {
    return `postgres://${POSTGRES_USER}@${this.host}:${this.port}/${encodeURIComponent(db)}`;
  }

  connectionConfig(db = 'postgres'): { host: string; port: number; user: string; database: string } {
    return { host: this.host, port: this.port, user: POSTGRES_USER, database: db };
  }

  /** Rows of the (last) statement, over a fresh connection that is closed afterwards. */
  async query<T = any>(sql: string, db = 'postgres'): Promise<T[]> {
    const client = new Client(this.connectionConfig(db));
    client.on('error', () => {}); // a server stopping under an idle client must not crash the process
    await client.connect();
    try {
      const res = (await client.query(sql)) as unknown as { rows: T[] } | Array<{ rows: T[] }>;
      return Array.isArray(res) ? (res[res.length - 1]?.rows ?? []) : res.rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** psql -X -At -c sql; stdout trimmed. The embedded binaries have no psql, so fall back to Debian's. */
  async psql(sql: string, db = 'postgres'): Promise<string> {
    const psql = firstExisting([join(this.binDir, 'psql'), join(DEBIAN_PG15_BIN, 'psql'), '/usr/bin/psql']);
    const { stdout } = await run(psql, ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      asPostgres: true,
      env: this.clientEnv(db),
    });
    return stdout.trim();
  }

  /** pgbench with PGHOST/PGPORT/PGUSER/PGDATABASE set for this server; args may still name a database. */
  async pgbench(args: string[]): Promise<string> {
    const pgbench = firstExisting([join(this.binDir, 'pgbench'), join(DEBIAN_PG15_BIN, 'pgbench')]);
    const { stdout } = await run(pgbench, args, { asPostgres: true, env: this.clientEnv('postgres') });
    return stdout;
  }

  /** A new empty directory baseDir/name owned by postgres, e.g. a tablespace location. */
  async makeDir(name: string): Promise<string> {
    if (!/^[\w.-]+$/.test(name) || name === '.' || name === '..') throw new Error(`makeDir: bad name ${JSON.stringify(name)}`);
    const dir = join(this.baseDir, name);
    await mkdir(dir);
    await chownToPostgres(dir, false);
    return dir;
  }

  /** pg_ctl stop; if that fails or the postmaster lingers, kill it by pid. Safe to call twice. */
  stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.stopping ??= this.doStop(mode);
    return this.stopping;
  }

  async destroy(): Promise<void> {
    try {
      await this.stop('immediate'); // the data is about to go: no shutdown checkpoint needed
    } finally {
      await rm(this.baseDir, { recursive: true, force: true });
    }
  }

  private async doStop(mode: 'fast' | 'immediate'): Promise<void> {
    const pid = this.postmasterPid;
    if (pid === undefined) return;
    await run(join(this.binDir, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60'], {
      asPostgres: true,
      timeoutMs: 90_000,
    }).catch(() => {}); // the pid is the fallback below
    // pg_ctl returns once postmaster.pid is gone, a moment before the process itself.
    if (!(await waitForExit(pid, 5000))) await killServer(pid);
    forgetServer(pid);
    this.postmasterPid = undefined;
  }

  private async start(timeoutS: number): Promise<void> {
    const sockDir = join(this.baseDir, 'sock');
    // pg_ctl hands -o to /bin/sh, hence the quotes; mkdtemp names never hold one.
    if (sockDir.includes("'")) throw new Error(`socket directory ${sockDir} contains a quote`);
    for (let attempt = 1; ; attempt++) {
      this.currentPort = await freePort();
      const logBefore = await readFile(this.logFile, 'utf8').catch(() => '');
      try {
        const pgCtl: [string, string[]] = [join(this.binDir, 'pg_ctl'),
          ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(timeoutS),
            '-o', `-p ${this.currentPort} -h ${this.host} -k '${sockDir}'`]];
        // The namespace is entered as root, then runuser drops to postgres inside it.
        const [cmd, args] = this.netns ? ['ip', ['netns', 'exec', this.netns.name, ...commandLine(pgCtl[0], pgCtl[1], true).flat()]] as [string, string[]] : pgCtl;
        await run(cmd, args, { asPostgres: !this.netns, cwd: this.baseDir, timeoutMs: (timeoutS + 30) * 1000 });
        break;
      } catch (err) {
        const log = (await readFile(this.logFile, 'utf8').catch(() => '')).slice(logBefore.length);
        await this.killStray(); // pg_ctl may give up while the server is still coming up
        // Another process can grab the port between freePort() and bind().
        if (attempt < 3 && /could not bind|Address already in use/.test(log)) continue;
        throw new Error(`starting PostgreSQL in ${this.dataDir} failed: ${(err as Error).message}\n${logTail(log)}`, {
          cause: err,
        });
      }
    }
    const pid = this.pid;
    if (pid === undefined) throw new Error(`pg_ctl started ${this.dataDir} but left no postmaster.pid`);
    this.postmasterPid = pid;
    // Only the harness's own temp dir goes if the process dies; startExisting's dataDir is the caller's.
    registerServer(pid, this.baseDir);
    await this.waitForConnections(Date.now() + timeoutS * 1000);
  }

  private async waitForConnections(deadline: number): Promise<void> {
    for (;;) {
      try {
        await this.query('SELECT 1');
        return;
      } catch (err) {
        if (Date.now() >= deadline) {
          const log = await readFile(this.logFile, 'utf8').catch(() => '');
          throw new Error(`PostgreSQL in ${this.dataDir} does not accept connections: ${(err as Error).message}\n${logTail(log)}`, {
            cause: err,
          });
        }
        await sleep(100);
      }
    }
  }

  private async killStray(): Promise<void> {
    const pid = this.pid;
    if (pid !== undefined && isAlive(pid)) await killServer(pid);
  }

  private clientEnv(db: string): NodeJS.ProcessEnv {
    return { PGHOST: this.host, PGPORT: String(this.port), PGUSER: POSTGRES_USER, PGDATABASE: db, PGCONNECT_TIMEOUT: '10' };
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolvePort(port) : reject(new Error('freePort: no port assigned'))));
    });
  });
}

const majors = new Map<string, Promise<number>>();

/** The major of `initdb --version` in binDir (e.g. "initdb (PostgreSQL) 18.4" → 18). */
export function binMajor(binDir: string): Promise<number> {
  let m = majors.get(binDir);
  if (m === undefined) {
    m = run(join(binDir, 'initdb'), ['--version'], { asPostgres: true }).then(({ stdout }) => {
      const found = /\(PostgreSQL\) (\d+)/.exec(stdout);
      if (!found) throw new Error(`cannot read the version of ${binDir}/initdb from ${JSON.stringify(stdout)}`);
      return Number(found[1]);
    });
    majors.set(binDir, m);
  }
  return m;
}

function firstExisting(paths: string[]): string {
  const found = paths.find((p) => existsSync(p));
  if (!found) throw new Error(`none of ${paths.join(', ')} exists`);
  return found;
}

function logTail(log: string, lines = 40): string {
  const tail = log.trimEnd().split('\n').slice(-lines).join('\n');
  return `--- server.log (last ${lines} lines) ---\n${tail || '(empty)'}`;
}

