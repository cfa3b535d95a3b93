/**
 * Where streamed WAL may wait when a backup has no directory of its own
 * (`-D -`, or a library pipeline that names none), and how much room it may
 * take. A plain backup needs neither: its WAL goes straight into the
 * target's `pg_wal/`, a tar backup's spool lives inside the target.
 *
 *   defaultSpoolParent()   os.tmpdir(), else /var/tmp: the first that is not
 *                          memory-backed (tmpfs, ramfs), else os.tmpdir()
 *   spoolBudget(dir)       bytes a spool in `dir` may hold: unbounded on
 *                          disk (the free space is checked per segment), on
 *                          a memory-backed filesystem half of what is free
 *                          there and at most a quarter of the free memory
 *   checkRoom(dir, bytes)  IoError unless `bytes` are free where `dir` is
 *
 * statfs can fail (a filesystem that does not answer): the spool is then
 * taken as on disk, and a full disk still fails the write with a clear error.
 */
import { statfsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { IoError } from '../errors';

/** statfs f_type of filesystems that live in memory: tmpfs, ramfs. */
const MEMORY_FS = new Map([
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
]);

function statfs(dir: string): { type: number; free: number } | null {
  try {
    const s = statfsSync(dir);
    return { type: s.type, free: s.bavail * s.bsize };
  } catch {
    return null;
  }
}

/** 'tmpfs' or 'ramfs' when `dir` is on a memory-backed filesystem, else null. */
export function memoryFilesystem(dir: string): string | null {
  const s = statfs(dir);
  return s ? (MEMORY_FS.get(s.type) ?? null) : null;
}

export function defaultSpoolParent(): string {
  const candidates = [tmpdir(), '/var/tmp'];
  for (const dir of candidates) if (statfs(dir) && !memoryFilesystem(dir)) return dir;
  return candidates[0];
}

export function spoolBudget(dir: string): number {
  const s = statfs(dir);
  if (!s || !MEMORY_FS.has(s.type)) return Infinity;
  return Math.floor(Math.min(s.free / 2, freemem() / 4));
}

export function checkRoom(dir: string, bytes: number): void {
  const s = statfs(dir);
  if (s && s.free < bytes) {
    throw new IoError(`no room for streamed WAL in "${dir}": ${s.free} bytes free, the next segment needs ${bytes}`);
  }
}
