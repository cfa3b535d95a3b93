/**
 * `--compress` specifications, parsed the way pg_basebackup reads `-Z`/`--compress`.
 *
 * In:  the option text — `none`, `zstd`, `zstd:5`, `zstd:level=5`,
 *      `zstd:level=1,workers=2`, each also with a `client-` prefix.
 * Out: `{ method: 'none' }` or `{ method: 'zstd', level, workers? }`; `workers`
 *      is absent when not given, so the transform picks its default.
 * Errors: UsageError, one line naming the option text and what is wrong.
 *
 * Pure: no streams, no native code. Differences from pg_basebackup, on purpose:
 * - `server-zstd[:…]` (BASE_BACKUP COMPRESSION 'zstd', PostgreSQL 15+) gives
 *   `server: true`: the network carries zstd, pgbb decompresses before its
 *   checks and, for tar and -D -, compresses again at the same level.
 *   server-gzip and server-lz4 are refused like their client forms.
 * - gzip and lz4 are not supported, and a bare level (`-Z 5`, gzip to
 *   pg_basebackup) is refused instead of silently meaning something else;
 *   `0` still means none.
 * - levels are 1..19 (zstd's normal range; 20..22 need --ultra memory).
 */
import { UsageError } from '../errors';

export type CompressSpec = { method: 'none' } | { method: 'zstd'; level: number; workers?: number; server?: true };

/** zstd's own default (ZSTD_CLEVEL_DEFAULT), which pg_basebackup also uses for zstd. */
export const ZSTD_DEFAULT_LEVEL = 3;
export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 19;
/** libzstd's bound on nbWorkers (ZSTDMT_NBWORKERS_MAX on 64-bit builds). */
export const ZSTD_MAX_WORKERS = 256;

export function parseCompressSpec(text: string): CompressSpec {
  const spec = text.trim();
  const bad = (why: string) => new UsageError(`invalid compression specification "${text}": ${why}`);
  if (spec === '') throw bad('it is empty');

  const colon = spec.indexOf(':');
  let method = (colon < 0 ? spec : spec.slice(0, colon)).toLowerCase();
  const detail = colon < 0 ? null : spec.slice(colon + 1);

  const server = method.startsWith('server-');
  if (server) {
    method = method.slice('server-'.length);
    if (method !== 'zstd') throw bad(`server-side compression method "${method}" is not supported (use server-zstd)`);
  }
  if (method.startsWith('client-')) method = method.slice('client-'.length);

  if (/^\d+$/.test(method) && detail === null) {
    if (Number(method) === 0) return { method: 'none' };
    throw bad(`a bare level means gzip to pg_basebackup, which pgbb does not support; use "zstd:${method}"`);
  }
  if (method === 'none') {
    if (detail !== null) throw bad('"none" takes no level or workers');
    return { method: 'none' };
  }
  if (method !== 'zstd') {
    throw bad(`compression method "${method}" is not supported (use zstd or none)`);
  }
  const where = server ? { server: true as const } : {};
  if (detail === null) return { method: 'zstd', level: ZSTD_DEFAULT_LEVEL, ...where };
  return { method: 'zstd', ...parseZstdDetail(detail, bad), ...where };
}

/** `5`, or `level=5,workers=2` in any order; each keyword at most once. */
function parseZstdDetail(detail: string, bad: (why: string) => UsageError): { level: number; workers?: number } {
  if (detail.trim() === '') throw bad('nothing after ":"');
  if (/^\s*-?\d+\s*$/.test(detail)) return { level: checkLevel(detail.trim(), bad) };

  let level: number | undefined;
  let workers: number | undefined;
  for (const raw of detail.split(',')) {
    const item = raw.trim();
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? null : item.slice(eq + 1).trim();
    if (key === '') throw bad('empty item in the list');
    if (key !== 'level' && key !== 'workers') {
      throw bad(`unknown keyword "${key}" (zstd accepts level and workers)`);
    }
    if (value === null || value === '') throw bad(`"${key}" needs a value, e.g. ${key}=${key === 'level' ? 3 : 2}`);
    if (key === 'level') {
      if (level !== undefined) throw bad('level given twice');
      level = checkLevel(value, bad);
    } else {
      if (workers !== undefined) throw bad('workers given twice');
      workers = checkWorkers(value, bad);
    }
  }
  return workers === undefined ? { level: level ?? ZSTD_DEFAULT_LEVEL } : { level: level ?? ZSTD_DEFAULT_LEVEL, workers };
}

function checkLevel(value: string, bad: (why: string) => UsageError): number {
  const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < ZSTD_MIN_LEVEL || n > ZSTD_MAX_LEVEL) {
    throw bad(`zstd level "${value}" is out of range (${ZSTD_MIN_LEVEL}..${ZSTD_MAX_LEVEL})`);
  }
  return n;
}

function checkWorkers(value: string, bad: (why: string) => UsageError): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n > ZSTD_MAX_WORKERS) {
    throw bad(`zstd workers "${value}" is out of range (0..${ZSTD_MAX_WORKERS})`);
  }
  return n;
}

/** The spec back as text, e.g. for --json results and logs. */
export function formatCompressSpec(spec: CompressSpec): string {
  if (spec.method === 'none') return 'none';
  return `${spec.server ? 'server-' : ''}zstd:${zstdDetail(spec)}`;
}

/** `level=N` or `level=N,workers=N`: pg_basebackup's detail form, which the server's COMPRESSION_DETAIL reads too. */
export function zstdDetail(spec: { level: number; workers?: number }): string {
  return spec.workers === undefined ? `level=${spec.level}` : `level=${spec.level},workers=${spec.workers}`;
}

/** File suffix for an archive compressed this way: '' or '.zst'. */
export function compressSuffix(spec: CompressSpec | undefined): string {
  return spec?.method === 'zstd' ? '.zst' : '';
}
