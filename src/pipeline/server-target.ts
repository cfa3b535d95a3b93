/**
 * `pgbb backup --target server:/DIR | blackhole` (PostgreSQL 15+): the
 * server writes the backup into a directory of its own (base.tar,
 * <oid>.tar, backup_manifest, as pg_basebackup -t server: writes it), or
 * writes nothing (blackhole: a dry run of the reading and checkpointing).
 *
 *   settleServerTarget(options) ─► ReplicationSource (TARGET, no members) ─► the reporter
 *
 * Nothing but archive names, progress and positions reaches pgbb, so it
 * checks nothing as it arrives: `pgbb verify DIR` on the server host checks
 * a server backup afterwards (pages, manifest, WAL with -X fetch).
 * pg_basebackup's rules and words: no -D, no -F, no client-side
 * compression, no -X stream (the WAL would have nowhere to go), no -R, no
 * --waldir; the server decides the rest (pg_write_server_files, an empty
 * or missing directory) and its error is the run's.
 */
import type { ConnectionOptions } from '../net/conninfo';
import { UsageError } from '../errors';
import type { BackupEvent, EndEvent, StartEvent } from '../events';
import type { BaseBackupOptions } from '../codec/protocol/base-backup';
import type { ChecksumAlgorithm } from '../codec/manifest-format';
import { ReplicationSource } from '../sources/replication-source';
import type { Reporter } from '../report/types';
import { plainReporter } from '../report/reporters';

export type BackupTarget = NonNullable<BaseBackupOptions['target']>;

export interface ServerTargetOptions {
  connection: ConnectionOptions;
  target: BackupTarget;
  wal: 'fetch' | 'none';
  checkpoint?: 'fast' | 'spread';
  label?: string;
  progress?: boolean;
  /** -r: passed to the server as MAX_RATE (kB/s): pgbb moves no data to pace. */
  maxRate?: number;
  manifest?: boolean;
  manifestChecksums?: ChecksumAlgorithm;
  manifestForceEncode?: boolean;
  verifyChecksums?: boolean;
  serverCompress?: { level: number; workers?: number };
  timeout?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface ServerTargetResult {
  start: StartEvent;
  end: EndEvent;
  /** Archive names the server reported writing (base.tar last). */
  archives: string[];
  /** The server's last progress count: bytes it read for the backup. */
  bytes: number;
  seconds: number;
  checkpointSeconds: number;
}

/**
 * -t/--target's value, as pg_basebackup splits it at the first colon;
 * `client` means no target (null). Checked here, where the server would
 * refuse it only after the checkpoint.
 */
export function parseBackupTarget(value: string): BackupTarget | null {
  const colon = value.indexOf(':');
  const name = colon < 0 ? value : value.slice(0, colon);
  const detail = colon < 0 ? null : value.slice(colon + 1);
  if (name === 'client' && detail === null) return null;
  if (name === 'blackhole') {
    if (detail !== null) throw new UsageError('target "blackhole" does not accept a target detail');
    return { kind: 'blackhole' };
  }
  if (name === 'server') {
    if (!detail) throw new UsageError('target "server" requires a target detail: --target server:/absolute/directory');
    if (!detail.startsWith('/')) throw new UsageError(`target "server": the directory "${detail}" must be an absolute path`);
    return { kind: 'server', directory: detail };
  }
  throw new UsageError(`unrecognized target: "${value}" (server:/DIR, blackhole or client)`);
}

export function describeTarget(t: BackupTarget): string {
  return t.kind === 'server' ? `server:${t.directory}` : 'blackhole';
}

export async function serverTargetBackup(o: ServerTargetOptions): Promise<ServerTargetResult> {
  const began = process.hrtime.bigint();
  const reporter = o.reporter ?? plainReporter();
  const source = new ReplicationSource({
    connection: o.connection,
    label: o.label ?? 'pgbb base backup',
    checkpoint: o.checkpoint ?? 'spread',
    wal: o.wal,
    manifest: o.manifest ?? true,
    manifestChecksums: o.manifestChecksums ?? 'CRC32C',
    manifestForceEncode: o.manifestForceEncode ?? false,
    // As pg_basebackup with a target: the server writes tablespace_map, not links.
    tablespaceMap: true,
    verifyChecksums: o.verifyChecksums ?? true,
    progress: o.progress ?? false,
    timeout: o.timeout,
    target: o.target,
    ...(o.maxRate !== undefined ? { maxRate: o.maxRate } : {}),
    ...(o.serverCompress ? { serverCompress: o.serverCompress } : {}),
    signal: o.signal,
  });
  reporter.step?.({ code: 'checkpoint', message: `initiating base backup to ${describeTarget(o.target)}, waiting for checkpoint to complete` });
  let start: StartEvent | null = null;
  let end: EndEvent | null = null;
  let startedAt = began;
  let bytes = 0;
  const archives: string[] = [];
  for await (const ev of source as AsyncIterable<BackupEvent>) {
    switch (ev.type) {
      case 'start':
        start = ev;
        startedAt = process.hrtime.bigint();
        reporter.start(ev);
        // Said once the server has begun (a server that refuses the target says so first).
        if (o.wal === 'none') reporter.warning('no_wal', 'WAL is not included (-X none): the backup cannot be restored without a WAL archive');
        break;
      case 'archive':
        archives.push(ev.name);
        break;
      case 'progress': {
        bytes = ev.done;
        const elapsed = Number(process.hrtime.bigint() - startedAt) / 1e9;
        const rate = elapsed > 0 ? ev.done / elapsed : 0;
        const eta = ev.total && rate > 0 ? Math.max(0, (ev.total - ev.done) / rate) : null;
        reporter.progress({ done: ev.done, total: ev.total ?? null, rateBytesPerSec: rate, etaSeconds: eta, elapsedSeconds: elapsed, phase: 'backup' });
        break;
      }
      case 'warning':
        reporter.warning(ev.code, ev.message);
        break;
      case 'end':
        end = ev;
        break;
      case 'archive-end':
      case 'manifest':
        break;
      default:
        throw new UsageError(`unexpected ${ev.type} event from a backup with a server-side target`);
    }
  }
  if (!start || !end) throw new UsageError('the server ended the backup without its start or end position');
  reporter.step?.({ code: 'done', message: `base backup completed${o.target.kind === 'server' ? ` in ${o.target.directory} on the server` : ' (blackhole: nothing kept)'}` });
  return {
    start,
    end,
    archives,
    bytes,
    seconds: Number(process.hrtime.bigint() - began) / 1e9,
    checkpointSeconds: Number(startedAt - began) / 1e9,
  };
}
