/**
 * `pgbb expire s3://bucket/prefix --retain-full N / --retain-days D`:
 * removes what the retention policy (src/s3/retention.ts) lets go, never a
 * backup an incremental still needs; incomplete backups go once older than
 * the grace period, and so do multipart uploads a killed backup left open
 * (where the store can list them). `--dry-run` says what would go.
 */
import { makeS3Client } from '../s3/client';
import { Repository } from '../s3/repository';
import { decideRetention } from '../s3/retention';
import { parseS3Url, splitBackupId } from '../s3/s3-url';
import { UsageError } from '../errors';

export interface ExpireOptions {
  repository: string;
  retainFull?: number;
  retainDays?: number;
  graceHours: number;
  dryRun: boolean;
  now?: Date;
}

export interface ExpireResult {
  removed: { id: string; why: string }[];
  kept: string[];
  /** Keys of open multipart uploads aborted; null when the store cannot list them. */
  abortedUploads: string[] | null;
  dryRun: boolean;
}

export async function expireCommand(o: ExpireOptions): Promise<ExpireResult> {
  const { repo: loc, id } = splitBackupId(parseS3Url(o.repository));
  if (id !== null) throw new UsageError(`expire takes a repository (s3://bucket/prefix), not a backup ("${id}")`);
  if (o.retainFull === undefined && o.retainDays === undefined) throw new UsageError('expire needs --retain-full N and/or --retain-days D');
  if (o.retainFull !== undefined && o.retainFull < 1) throw new UsageError('--retain-full must be at least 1');
  const now = o.now ?? new Date();
  const client = makeS3Client();
  try {
    const repo = new Repository(client, loc);
    const listed = await repo.list();
    const d = decideRetention(
      listed.map((b) => ({ id: b.id, complete: b.record !== null, kind: b.record?.kind ?? null, parent: b.record?.parent ?? null, started: b.started })),
      { retainFull: o.retainFull, retainDays: o.retainDays, graceHours: o.graceHours, now },
    );
    if (!o.dryRun) for (const r of d.remove) await repo.remove(r.id);
    const abortedUploads = await repo.abortStaleUploads(new Date(now.getTime() - o.graceHours * 3_600_000), o.dryRun);
    return { removed: d.remove, kept: d.keep, abortedUploads, dryRun: o.dryRun };
  } finally {
    client.destroy();
  }
}

export function expireReport(r: ExpireResult, json: boolean): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  if (json) return r.removed.map((x) => JSON.stringify({ id: x.id, action: r.dryRun ? 'would-remove' : 'removed', reason: x.why }) + '\n').join('');
  const lines = r.removed.map((x) => `pgbb: ${verb} ${x.id} (${x.why})\n`);
  lines.push(`pgbb: ${r.removed.length} backup(s) ${verb}, ${r.kept.length} kept\n`);
  if (r.abortedUploads === null) lines.push('pgbb: the store cannot list open multipart uploads (ListMultipartUploads not implemented): none aborted\n');
  else if (r.abortedUploads.length) lines.push(`pgbb: ${r.dryRun ? 'would abort' : 'aborted'} ${r.abortedUploads.length} stale multipart upload(s)\n`);
  return lines.join('');
}

export function parseCount(text: string, opt: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`invalid ${opt} "${text}": must be a whole number`);
  return Number(text);
}

export function parseAmount(text: string, opt: string): number {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) throw new UsageError(`invalid ${opt} "${text}": must be a number`);
  return Number(text);
}
