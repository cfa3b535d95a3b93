/**
 * What an integration test file makes (servers, temp directories) is removed
 * after its last test, last made first; and the arguments and checks the
 * refresh tests share.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { Cluster, DEBIAN_PG15_BIN, makeTempDir } from './cluster';
import { run } from './run';

export interface Scratch {
  /** Runs `f` after the file's tests. */
  defer(f: () => Promise<unknown>): void;
  /** A temp directory removed after the file's tests. */
  dir(prefix: string): Promise<string>;
  /** A PostgreSQL 15 server (Cluster.create) destroyed after the file's tests. */
  cluster(): Promise<Cluster>;
}

export function testScratch(): Scratch {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  return {
    defer: (f) => void cleanup.push(f),
    dir: async (prefix) => {
      const d = await makeTempDir(prefix);
      cleanup.push(() => fs.rm(d, { recursive: true, force: true }));
      return d;
    },
    cluster: async () => {
      const c = await Cluster.create();
      cleanup.push(() => c.destroy());
      return c;
    },
  };
}

/** `-d CONNINFO` for pgbb, as the postgres user over TCP. */
export const connArgs = (c: Cluster): string[] => ['-d', `host=${c.host} port=${c.port} user=postgres`];

export const verifybackup = (dir: string) => run(join(DEBIAN_PG15_BIN, 'pg_verifybackup'), ['-q', dir]);
