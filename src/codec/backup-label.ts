/** Reads the fields pgbb needs from a backup_label file (xlog.c / xlogbackup.c format). */
import { PgbbError } from '../errors';

export interface BackupLabel {
  startLsn: string;
  timeline: number;
  label: string;
}

export function parseBackupLabel(text: string, file = 'backup_label'): BackupLabel {
  const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+) /m.exec(text);
  const tli = /^START TIMELINE: (\d+)$/m.exec(text);
  if (!start || !tli) throw new PgbbError('backup_label', `"${file}" lacks START WAL LOCATION or START TIMELINE`);
  const label = /^LABEL: (.*)$/m.exec(text);
  return { startLsn: start[1], timeline: Number(tli[1]), label: label ? label[1] : '' };
}

/** The end position of a backup: the last WAL range's End-LSN in its manifest. */
export function manifestEnd(manifest: Buffer | null): { endLsn: string; timeline: number } {
  if (!manifest) return { endLsn: '0/0', timeline: 0 };
  const text = manifest.toString('utf8');
  const ranges = [...text.matchAll(/"Timeline": (\d+), "Start-LSN": "[0-9A-F/]+", "End-LSN": "([0-9A-F]+\/[0-9A-F]+)"/g)];
  // Newest timeline first (backup_manifest.c), so the first range holds the end.
  const r = ranges[0];
  return r ? { endLsn: r[2], timeline: Number(r[1]) } : { endLsn: '0/0', timeline: 0 };
}
