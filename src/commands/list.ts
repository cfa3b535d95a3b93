/**
 * `pgbb list s3://bucket/prefix`: every backup there, oldest first — a table
 * for people, or `--json` (one object per line) for scripts. A backup
 * without its record is listed as incomplete, never as complete; one whose
 * record does not parse is listed as damaged.
 */
import { makeS3Client } from '../s3/client';
import { Repository, type ListedBackup } from '../s3/repository';
import { parseS3Url, splitBackupId } from '../s3/s3-url';
import { UsageError } from '../errors';

export interface ListRow {
  id: string;
  kind: 'full' | 'incremental' | null;
  parent: string | null;
  status: 'complete' | 'incomplete' | 'damaged';
  startTime: string;
  endTime: string | null;
  startLsn: string | null;
  endLsn: string | null;
  timeline: number | null;
  /** Data backed up (uncompressed), and what the objects take in the store. */
  bytes: number | null;
  storedBytes: number | null;
  label: string | null;
  /** Why a damaged backup is. */
  problem?: string;
}

export async function listCommand(o: { repository: string }): Promise<ListRow[]> {
  const { repo: loc, id } = splitBackupId(parseS3Url(o.repository));
  if (id !== null) throw new UsageError(`list takes a repository (s3://bucket/prefix), not a backup ("${id}")`);
  const client = makeS3Client();
  try {
    return (await new Repository(client, loc).list()).map(row);
  } finally {
    client.destroy();
  }
}

export function row(b: ListedBackup): ListRow {
  const r = b.record;
  return {
    id: b.id,
    kind: r?.kind ?? null,
    parent: r?.parent ?? null,
    status: r ? 'complete' : b.damaged ? 'damaged' : 'incomplete',
    startTime: r?.startTime ?? b.started.toISOString(),
    endTime: r?.endTime ?? null,
    startLsn: r?.startLsn ?? null,
    endLsn: r?.endLsn ?? null,
    timeline: r?.timeline ?? null,
    bytes: r?.bytes ?? null,
    storedBytes: r ? r.objects.reduce((n, x) => n + x.size, 0) : null,
    label: r?.label ?? null,
    ...(b.damaged ? { problem: b.damaged } : {}),
  };
}

export function listJson(rows: ListRow[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}

const size = (n: number | null) => (n === null ? '-' : n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} kiB`);

export function listTable(rows: ListRow[]): string {
  const head = ['ID', 'KIND', 'STATUS', 'START', 'START LSN', 'END LSN', 'TLI', 'SIZE', 'STORED', 'PARENT'];
  const body = rows.map((r) => [
    r.id,
    r.kind ?? '-',
    r.status,
    r.startTime.replace(/\.\d+Z$/, 'Z'),
    r.startLsn ?? '-',
    r.endLsn ?? '-',
    r.timeline === null ? '-' : String(r.timeline),
    size(r.bytes),
    size(r.storedBytes),
    r.parent ?? '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n';
  return line(head) + body.map(line).join('') + (rows.length === 0 ? '(no backups)\n' : '');
}
