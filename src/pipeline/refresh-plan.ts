/**
 * A refresh's options, settled once: backup's (src/pipeline/backup-plan.ts)
 * for a plain directory written in place, and the refresh's own.
 */
import * as path from 'node:path';
import { UsageError } from '../errors';
import type { RefreshDirectorySinkOptions } from '../../sinks/refresh-directory';
import { settleBackup, type BackupOptions, type BackupPlan } from './backup-plan';

/**
 * Everything `backup` takes but the output format and compression (a refresh
 * writes a plain directory in place), and your own observers (a refresh may
 * run twice — incremental, then full — and a stream runs once).
 */
export interface RefreshOptions extends Omit<BackupOptions, 'format' | 'compress' | 'walSpool' | 'output' | 'observers' | 'createSlot' | 'writeRecoveryConf'> {
  /** The plain backup to refresh in place. */
  target: string;
  /** -T OLD=NEW, for tablespaces that are new since the backup. */
  tablespaceMapping?: Record<string, string>;
  /** --chunk-size; default the backup's own map's, else 1 MiB. */
  chunkSize?: number;
  /** 'auto' (default): INCREMENTAL when the server and DIR allow it; 'off': always stream everything. */
  incremental?: 'auto' | 'off';
  /** Fault injection for library users' and pgbb's own crash tests (see RefreshDirectorySink); the CLI never sets it. */
  onStep?: RefreshDirectorySinkOptions['onStep'];
}

export interface RefreshPlan extends BackupPlan {
  incremental: 'auto' | 'off';
  onStep: RefreshOptions['onStep'];
}

export function settleRefresh(o: RefreshOptions): RefreshPlan {
  const { incremental, onStep, ...rest } = o;
  if (incremental !== undefined && incremental !== 'auto' && incremental !== 'off') {
    throw new UsageError(`invalid incremental mode "${String(incremental)}", must be "auto" or "off"`);
  }
  return { ...settleBackup({ ...rest, format: 'plain' }), incremental: incremental ?? 'auto', onStep };
}

/**
 * `pgbb backup --incremental-from PRIOR -D TARGET`: the refresh of PRIOR in
 * place, so TARGET must be PRIOR (plain format). Returns the directory.
 */
export function checkIncrementalFrom(prior: string, target: string, format: 'plain' | 'tar'): string {
  if (format !== 'plain' || target === '-') throw new UsageError('--incremental-from needs a plain backup (-F plain) written to a directory');
  if (path.resolve(prior) !== path.resolve(target)) {
    throw new UsageError(`--incremental-from refreshes the prior backup in place: -D must name the same directory as "${prior}" (copy it first to keep the old one)`);
  }
  return target;
}
