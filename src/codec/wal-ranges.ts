/**
 * The manifest's `WAL-Ranges` against what was streamed: pg_verifybackup
 * (and a restore) needs every range's WAL, so a streamed backup is only
 * whole when the stream covered them all. Pure functions.
 *
 * In:  the server's backup_manifest bytes; the streamed timeline and LSNs.
 * Out: the ranges (newest timeline first, as the server lists them).
 * Errors: ManifestError when the manifest has no WAL-Ranges or a range is
 *      on another timeline or outside the streamed LSNs.
 */
import { ManifestError } from '../errors';
import { formatLsn, parseLsn } from './lsn';

export interface WalRange {
  timeline: number;
  start: bigint;
  end: bigint;
}

const RANGE = /\{\s*"Timeline"\s*:\s*(\d+)\s*,\s*"Start-LSN"\s*:\s*"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"\s*,\s*"End-LSN"\s*:\s*"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"\s*\}/g;

export function parseWalRanges(manifest: Buffer | string): WalRange[] {
  const text = typeof manifest === 'string' ? manifest : manifest.toString('utf8');
  // Paths are JSON strings, so an unescaped `"WAL-Ranges"` only appears as the key.
  const at = text.lastIndexOf('"WAL-Ranges"');
  if (at < 0) throw new ManifestError('backup manifest has no WAL-Ranges');
  const close = text.indexOf(']', at);
  const section = text.slice(at, close < 0 ? undefined : close);
  const ranges: WalRange[] = [];
  for (const m of section.matchAll(RANGE)) {
    ranges.push({ timeline: Number(m[1]), start: parseLsn(m[2]), end: parseLsn(m[3]) });
  }
  if (!ranges.length) throw new ManifestError('backup manifest lists no WAL range');
  return ranges;
}

/** Throws unless every range lies on `timeline` within [start, end]. */
export function checkWalCoverage(ranges: WalRange[], streamed: { timeline: number; start: bigint; end: bigint }): void {
  const got = `timeline ${streamed.timeline} from ${formatLsn(streamed.start)} to ${formatLsn(streamed.end)}`;
  for (const r of ranges) {
    const need = `timeline ${r.timeline} from ${formatLsn(r.start)} to ${formatLsn(r.end)}`;
    if (r.timeline !== streamed.timeline || r.start < streamed.start || r.end > streamed.end) {
      throw new ManifestError(`backup manifest needs WAL of ${need}, but streaming covered ${got}`);
    }
  }
}
