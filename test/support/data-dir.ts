/**
 * Files of a PostgreSQL data directory that the harness writes or adjusts
 * before a server starts on it.
 *
 * configureNew: after initdb, replaces pg_hba.conf (trust for local and
 *   loopback connections, `replication` included) and appends our settings
 *   plus the caller's to postgresql.conf (later lines win in that file).
 * handOver: makes a directory we did not create startable — ownership to the
 *   postgres OS user (tablespace targets too) and mode 0700.
 * pgVersionOf: PG_VERSION, to pick matching binaries.
 * flipByte: inverts one byte of a (stopped server's) file, e.g. to corrupt a page.
 *
 * Errors: file system errors and failing chown commands propagate; a setting
 * name that is not an identifier is refused before anything is written.
 */

import { appendFile, chmod, lstat, open, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chownToPostgres, isRoot } from './run';

export type ConfValue = string | number | boolean;

const HBA = `# pgbb test harness: trust everything local, replication included
local all         all               trust
local replication all               trust
host  all         all 127.0.0.1/32  trust
host  replication all 127.0.0.1/32  trust
host  all         all ::1/128       trust
host  replication all ::1/128       trust
`;

/**
 * fsync stays on unless the caller turns it off: tests restore backups and
 * must see what a real server writes. Port, listen address and socket
 * directory are not here: Cluster passes them on the postmaster command line.
 */
const DEFAULT_CONF: Record<string, ConfValue> = {
  listen_addresses: '127.0.0.1',
  max_wal_senders: 10,
  wal_level: 'replica',
  shared_buffers: '32MB',
  max_connections: 40,
  logging_collector: false,
};

/** `trustAlso`: more pg_hba address fields to trust (e.g. 'samenet' for a server in a network namespace). */
export async function configureNew(dataDir: string, conf: Record<string, ConfValue> = {}, trustAlso: string[] = []): Promise<void> {
  const lines = confLines({ ...DEFAULT_CONF, ...conf });
  const more = trustAlso.flatMap((a) => [`host  all         all ${a}  trust`, `host  replication all ${a}  trust`]);
  await writeFile(join(dataDir, 'pg_hba.conf'), HBA + more.map((l) => `${l}\n`).join(''));
  await appendFile(join(dataDir, 'postgresql.conf'), lines);
}

function confLines(conf: Record<string, ConfValue>): string {
  const lines = Object.entries(conf).map(([key, value]) => {
    if (!/^[A-Za-z_][\w.]*$/.test(key)) throw new Error(`bad postgresql.conf setting name ${JSON.stringify(key)}`);
    const v =
      typeof value === 'boolean' ? (value ? 'on' : 'off') : typeof value === 'number' ? String(value) : `'${value.replace(/'/g, "''")}'`;
    return `${key} = ${v}`;
  });
  return `\n# pgbb test harness (port, listen address and socket dir come from the command line)\n${lines.join('\n')}\n`;
}

/** chown -R the data dir and every tablespace it links to (chown -R does not follow the links), then 0700. */
export async function handOver(dataDir: string): Promise<void> {
  if (isRoot()) {
    await chownToPostgres(dataDir);
    const tblspc = join(dataDir, 'pg_tblspc');
    for (const name of await readdir(tblspc).catch(() => [] as string[])) {
      const link = join(tblspc, name);
      if ((await lstat(link)).isSymbolicLink()) await chownToPostgres(await realpath(link));
    }
  }
  await chmod(dataDir, 0o700);
}

/** '15', '17', … or '' when the file is missing. */
export async function pgVersionOf(dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '')).trim();
}

export async function flipByte(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}
