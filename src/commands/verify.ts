/**
 * `pgbb verify SOURCE`: one read of a backup, any format pgbb writes, through
 * independent checks side by side (a settling tee: one failing check does not
 * stop the others):
 *
 *                 ┌─► manifest-verify        sizes and CRC32C of every file, files
 *                 │                          missing or extra, the manifest's own SHA-256
 *   backup ──tee──┼─► page-checksum-verify   every page of every relation file
 *                 └─► wal-verify             WAL from start to end LSN present, continuous
 *
 * Every problem is reported, each naming its file, block or LSN; the result
 * says whether all checks passed.
 */
import { Writable } from 'node:stream';
import { openBackupSource, type BackupFormat } from '../sources/open-backup';
import { runPipeline } from '../pipeline';
import { teeSettled } from '../../sinks/tee';
import { manifestVerify } from '../../transforms/manifest-verify';
import { pageChecksumVerify } from '../../transforms/page-checksum-verify';
import { walVerify } from '../../transforms/wal-verify';
import { tap } from '../../transforms/tap';
import { describeError } from '../errors';
import type { EndEvent, StartEvent } from '../events';

export interface VerifyOptions {
  source: string;
  /** Skip the WAL check (backups taken with -X none). */
  checkWal?: boolean;
  checkPages?: boolean;
  signal?: AbortSignal;
}

export interface VerifyReport {
  format: BackupFormat;
  ok: boolean;
  problems: string[];
  start: StartEvent | null;
  end: EndEvent | null;
  files: number;
  bytes: number;
  pagesChecked: number;
  walSegments: number;
  walRecords: number;
  manifestChecked: boolean;
}

/** A sink that drops what a check passes on: the checks are the point. */
function discard(): Writable {
  return new Writable({ objectMode: true, write: (_ev, _enc, cb) => cb() });
}

export async function verifyCommand(o: VerifyOptions): Promise<VerifyReport> {
  // A directory a refresh is rewriting is not a backup, whatever its files say.
  const { format, stream } = await openBackupSource(o.source);
  const manifest = manifestVerify({ require: true });
  const pages = pageChecksumVerify();
  const wal = walVerify();
  const checks = [
    { name: 'manifest', stage: manifest, on: true },
    { name: 'page checksums', stage: pages, on: o.checkPages ?? true },
    { name: 'WAL', stage: wal, on: o.checkWal ?? true },
  ].filter((c) => c.on);
  for (const c of checks) c.stage.pipe(discard());
  let start: StartEvent | null = null;
  let end: EndEvent | null = null;
  const t = teeSettled(...checks.map((c) => c.stage));
  const observe = tap((ev) => {
    if (ev.type === 'start') start = ev;
    else if (ev.type === 'end') end = ev;
  });
  await runPipeline(stream, [observe], t, o.signal);
  const problems: string[] = [];
  for (const c of checks) {
    const err = t.failures.get(c.stage);
    if (!err) continue;
    if (c.stage === pages && pages.result.failures.length) {
      for (const f of pages.result.failures) problems.push(`page checksums: ${f.message}`);
      const more = pages.result.failureCount - pages.result.failures.length;
      if (more > 0) problems.push(`page checksums: and ${more} more failures`);
    } else {
      problems.push(`${c.name}: ${describeError(err)}`);
    }
  }
  return {
    format,
    ok: problems.length === 0,
    problems,
    start,
    end,
    files: manifest.result?.files ?? 0,
    bytes: manifest.result?.bytes ?? 0,
    manifestChecked: manifest.result?.checked ?? false,
    pagesChecked: pages.result.pagesChecked,
    walSegments: wal.result.segments,
    walRecords: wal.result.records,
  };
}
