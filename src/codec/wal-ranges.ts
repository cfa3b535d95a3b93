/**
 * The manifest's `WAL-Ranges`, in one place: reading a range (the checks
 * src/common/parse_manifest.c makes), writing one, computing them as the
 * server does (walRangesFor), and checking them against what was streamed
 * (checkWalCoverage: pg_verifybackup, and a restore, need every range's
 * WAL, so a streamed backup is only whole when the stream covered them all).
 * Pure functions.
 *
 * Two shapes: ManifestWalRange as the manifest writes it (LSNs `X/X`), and
 * WalRange with the LSNs as numbers, for comparing.
 * Errors: ManifestError ("backup_manifest: …" for a range that does not
 *      parse; "backup manifest …" when one is missing or not covered).
 */
import { ManifestError } from '../errors';
import { formatLsn, parseLsn } from './lsn';
import { JsonTokenizer, type JsonHandler } from './json-tokenizer';
import { JsonValueBuilder } from './json-value';
import { fail, show, type WalRange as ManifestWalRange } from './manifest-format';

export type { ManifestWalRange };

export interface WalRange {
  timeline: number;
  start: bigint;
  end: bigint;
}

const RANGE_KEYS = new Set(['Timeline', 'Start-LSN', 'End-LSN']);
const LSN_TEXT = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** PostgreSQL reads these with strtoul on the token text: a JSON number or a digit string. */
export function unsigned(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(`${what} is not an integer`);
  return n as number;
}

/** One element of "WAL-Ranges", as JSON.parse gives it, checked. */
export function walRangeFromJson(r: unknown): ManifestWalRange {
  if (!isObject(r)) return fail('a WAL range is not an object');
  for (const k of Object.keys(r)) if (!RANGE_KEYS.has(k)) fail(`unexpected WAL range field "${show(k)}"`);
  const lsn = (v: unknown, what: string) => {
    if (v === undefined) fail(`missing ${what} in a WAL range`);
    if (typeof v !== 'string' || !LSN_TEXT.test(v)) fail(`could not parse ${what} "${show(v)}"`);
    return v as string;
  };
  if (r.Timeline === undefined) fail('missing timeline in a WAL range');
  return { timeline: unsigned(r.Timeline, 'timeline'), startLsn: lsn(r['Start-LSN'], 'start LSN'), endLsn: lsn(r['End-LSN'], 'end LSN') };
}

/** The LSNs as numbers. */
export function lsnRange(r: ManifestWalRange): WalRange {
  return { timeline: r.timeline, start: parseLsn(r.startLsn), end: parseLsn(r.endLsn) };
}

/** One range as backup_manifest.c writes it. */
export function walRangeLine(r: ManifestWalRange): string {
  return `{ "Timeline": ${r.timeline}, "Start-LSN": "${formatLsn(parseLsn(r.startLsn))}", "End-LSN": "${formatLsn(parseLsn(r.endLsn))}" }`;
}

const STOP = Symbol('stop');

/** Passes events to `b` and stops the tokenizer once its value is complete. */
function untilDone(b: JsonValueBuilder): JsonHandler {
  const then = () => {
    if (b.done) throw STOP;
  };
  return {
    startObject: () => b.startObject(),
    startArray: () => b.startArray(),
    endObject: () => (b.endObject(), then()),
    endArray: () => (b.endArray(), then()),
    key: (k) => b.key(k),
    scalar: (v, raw) => (b.scalar(v, raw), then()),
  };
}

/**
 * The WAL-Ranges of a whole manifest (or of the text from its
 * `"WAL-Ranges"` key on), read without checking the rest: for a manifest
 * the server just sent, which manifest-verify checks in full.
 */
export function parseWalRanges(manifest: Buffer | string): WalRange[] {
  const text = typeof manifest === 'string' ? manifest : manifest.toString('utf8');
  // Paths are JSON strings, so an unescaped `"WAL-Ranges"` only appears as the key.
  const at = text.lastIndexOf('"WAL-Ranges"');
  if (at < 0) throw new ManifestError('backup manifest has no WAL-Ranges');
  const open = text.indexOf('[', at);
  if (open < 0 || text.slice(at + 12, open).trim() !== ':') throw new ManifestError('backup manifest: "WAL-Ranges" is not an array');
  const list = new JsonValueBuilder(1);
  const tokens = new JsonTokenizer(untilDone(list));
  try {
    for (let i = open; i < text.length; i += 65536) tokens.write(text.slice(i, i + 65536));
  } catch (err) {
    if (err !== STOP) throw new ManifestError(`backup manifest: WAL-Ranges are not valid JSON (${show((err as Error).message)})`);
  }
  if (!list.done) throw new ManifestError('backup manifest: WAL-Ranges are not valid JSON (Unexpected end of JSON input)');
  const ranges = (list.value as unknown[]).map((r) => lsnRange(walRangeFromJson(r)));
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

/**
 * WAL-Ranges as AddWALInfoToBackupManifest computes them, newest timeline
 * first. A backup that ends on another timeline than it started needs the end
 * timeline's history file (`pg_wal/<tli>.history`) text.
 */
export function walRangesFor(startLsn: string, startTli: number, endLsn: string, endTli: number, history?: string): ManifestWalRange[] {
  if (startTli === endTli) return [{ timeline: endTli, startLsn: formatLsn(parseLsn(startLsn)), endLsn: formatLsn(parseLsn(endLsn)) }];
  if (history === undefined) {
    fail(`the backup spans timelines ${startTli} to ${endTli} and the history file "pg_wal/${endTli.toString(16).toUpperCase().padStart(8, '0')}.history" was not seen`);
  }
  // readTimeLineHistory: parent lines oldest first; the end timeline itself has no end.
  const entries: Array<{ tli: number; begin: bigint; end: bigint }> = [];
  let prevEnd = 0n;
  for (const line of history!.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [tli, lsn] = t.split(/\s+/);
    if (!/^\d+$/.test(tli) || lsn === undefined) fail(`invalid line in timeline history file: "${t}"`);
    const switchpoint = parseLsn(lsn);
    entries.unshift({ tli: Number(tli), begin: prevEnd, end: switchpoint });
    prevEnd = switchpoint;
  }
  entries.unshift({ tli: endTli, begin: prevEnd, end: 0n });

  const start = parseLsn(startLsn);
  let end = parseLsn(endLsn);
  const out: ManifestWalRange[] = [];
  for (const e of entries) {
    if (e.end !== 0n && e.end < start) continue;
    if (out.length === 0 && e.tli !== endTli) fail(`expected end timeline ${endTli} but found timeline ${e.tli}`);
    const begin = e.tli === startTli ? start : e.begin;
    if (e.tli !== startTli && begin === 0n) fail(`expected start timeline ${startTli} but found timeline ${e.tli}`);
    out.push({ timeline: e.tli, startLsn: formatLsn(begin), endLsn: formatLsn(end) });
    if (e.tli === startTli) return out;
    end = e.begin;
  }
  return fail(`start timeline ${startTli} not found in history of timeline ${endTli}`);
}

