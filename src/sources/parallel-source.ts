/**
 * Parallel source (`-j N`): a live server's backup over N SQL sessions
 * against an unpatched server (src/sources/parallel-reader.ts), with WAL
 * streamed beside it by the same wrapper as the replication source's
 * (src/sources/streamed-wal-source.ts).
 *
 * It brings no manifest and does not verify page checksums: the builder puts
 * manifest-build and page-checksum-verify (with `reread`) after it.
 * With `localDir` it is the local source: the same leader protocol, the
 * files read from disk (src/sources/local-fetch.ts).
 * -X fetch is not possible (the server's WAL option is BASE_BACKUP's).
 */
import type { ClientConfig } from 'pg';
import { UsageError } from '../errors';
import { checkWalOptions } from '../wal/streamed-wal';
import type { RateLimiter } from '../rate-limiter';
import { ParallelReader } from './parallel-reader';
import { StreamedWalSource } from './streamed-wal-source';
import { checkJobs } from './parallel-jobs';

export interface ParallelSourceOptions {
  /** Replication config, for streaming WAL. */
  clientConfig: ClientConfig;
  /** Plain SQL config, for the leader and the workers. */
  sqlConfig: ClientConfig;
  jobs: number;
  /** The local source: files read from this data directory (the server's, checked) by `jobs` readers. */
  localDir?: string;
  /** refresh -j: the backup being refreshed; pieces it already holds do not cross the network (src/sources/remote-hash-fetch.ts). */
  remoteHashDir?: string;
  label?: string;
  checkpoint?: 'fast' | 'spread';
  wal?: 'stream' | 'none';
  slot?: string;
  noSlot?: boolean;
  walDir?: string;
  walSpool?: string;
  rateLimiter?: RateLimiter;
  timeout: number;
  signal?: AbortSignal;
}

export class ParallelSource extends StreamedWalSource {
  private reader: ParallelReader | null = null;

  constructor(o: ParallelSourceOptions) {
    checkJobs(o.jobs);
    const wal = o.wal ?? 'stream';
    if ((wal as string) === 'fetch') throw new UsageError('-j/--jobs cannot fetch WAL (-X fetch): use -X stream');
    checkWalOptions({ wal, slot: o.slot, noSlot: o.noSlot });
    let made: ParallelReader | null = null;
    super({
      source: (hooks) =>
        (made = new ParallelReader({ config: o.sqlConfig, jobs: o.jobs, ...(o.localDir ? { localDir: o.localDir } : {}), ...(o.remoteHashDir ? { remoteHashDir: o.remoteHashDir } : {}), label: o.label ?? 'pgbb base backup', checkpoint: o.checkpoint ?? 'spread', timeoutMs: o.timeout, hooks })),
      wal:
        wal === 'stream'
          ? { clientConfig: o.clientConfig, slot: o.slot, noSlot: o.noSlot ?? false, walDir: o.walDir, walSpool: o.walSpool, limiter: o.rateLimiter, timeoutMs: o.timeout }
          : null,
      signal: o.signal,
    });
    this.reader = made;
  }

  /** File data received over the network (WAL not included). */
  get networkBytes(): number {
    return this.reader?.networkBytes ?? 0;
  }

  /** Reads one page again (for page-checksum-verify's re-read). */
  reread(path: string, block: number): Promise<Buffer | null> {
    return this.reader ? this.reader.reread(path, block) : Promise.resolve(null);
  }
}
