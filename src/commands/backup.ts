/**
 * `pgbb backup`: options → ReplicationSource → sink, the way pg_basebackup
 * takes them.
 */
import { ReplicationSource } from '../sources/replication-source';
import { DirectorySink } from '../../sinks/directory';
import { TarFilesSink } from '../../sinks/tar-files';
import { StdoutSink } from '../../sinks/stdout';
import { runPipeline } from '../pipeline';
import { tap } from '../../transforms/tap';
import { UsageError } from '../errors';
import type { ConnectionOptions } from '../conninfo';
import type { EndEvent, StartEvent } from '../events';

export interface BackupCommandOptions {
  connection: ConnectionOptions;
  target: string;
  format: 'plain' | 'tar';
  checkpoint: 'fast' | 'spread';
  label: string;
  tablespaceMapping: Record<string, string>;
  wal: 'fetch' | 'none';
  maxRate?: number;
  sync: boolean;
  manifest: boolean;
  verifyChecksums: boolean;
  signal?: AbortSignal;
  /** Called with one-line human messages (warnings, -X none notice). */
  log?: (line: string) => void;
}

export interface BackupResult {
  start: StartEvent;
  end: EndEvent;
  bytes: number;
  seconds: number;
}

export function makeSink(o: Pick<BackupCommandOptions, 'target' | 'format' | 'tablespaceMapping' | 'sync'>): DirectorySink | TarFilesSink | StdoutSink {
  if (o.target === '-') {
    if (o.format === 'plain') throw new UsageError('-D - (stdout) requires tar format (-F tar)');
    if (Object.keys(o.tablespaceMapping).length) throw new UsageError('-T/--tablespace-mapping is only allowed with plain format');
    return new StdoutSink();
  }
  if (o.format === 'tar') {
    if (Object.keys(o.tablespaceMapping).length) throw new UsageError('-T/--tablespace-mapping is only allowed with plain format');
    return new TarFilesSink({ target: o.target, sync: o.sync });
  }
  return new DirectorySink({ target: o.target, tablespaceMapping: o.tablespaceMapping, sync: o.sync });
}

export async function backupCommand(o: BackupCommandOptions): Promise<BackupResult> {
  const began = process.hrtime.bigint();
  const log = o.log ?? (() => {});
  // The target is checked (and created) before the server is contacted.
  const sink = makeSink(o);
  await sink.ready();
  const source = new ReplicationSource({
    connection: o.connection,
    label: o.label,
    checkpoint: o.checkpoint,
    wal: o.wal,
    manifest: o.manifest,
    maxRate: o.maxRate,
    verifyChecksums: o.verifyChecksums,
  });
  let start: StartEvent | null = null;
  let end: EndEvent | null = null;
  let bytes = 0;
  const observer = tap((ev) => {
    if (ev.type === 'start') start = ev;
    else if (ev.type === 'end') end = ev;
    else if (ev.type === 'data') bytes += ev.chunk.length;
    else if (ev.type === 'warning') log(`WARNING: ${ev.message}`);
  });
  if (o.wal === 'none') log('WAL is not included (-X none): the backup cannot be restored without a WAL archive');
  await runPipeline(source, [observer], sink, o.signal);
  return {
    start: start!,
    end: end!,
    bytes,
    seconds: Number(process.hrtime.bigint() - began) / 1e9,
  };
}
