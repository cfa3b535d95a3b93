/**
 * backup_manifest reader, streaming: feed the manifest in pieces split
 * anywhere, get each file entry as soon as it is complete; end() checks the
 * whole and returns the header and WAL ranges. Pure. Memory: the entry being
 * read, the last two lines (for the checksum), the WAL ranges, and one
 * compact record per path to refuse duplicates (./file-table.ts, or the
 * caller's own set) — never the text or an object per file.
 *
 *   const r = new ManifestReader({ onFile });
 *   r.write(piece); …                  onFile(entry) as entries complete
 *   const { version, systemIdentifier, walRanges, files } = r.end();
 *
 * Any JSON layout is read (a real tokenizer, ./json-tokenizer.ts), with the
 * checks and messages of src/common/parse_manifest.c as pgbb words them; when
 * a manifest has several faults, end() names the one parseManifest always
 * named (UTF-8, JSON, layout, version, checksum, System-Identifier, files,
 * WAL ranges, in that order: ./manifest-faults.ts). The SHA-256 Manifest-Checksum runs along over
 * everything before the last line. Entries handed out before end() are
 * provisional: when end() throws, the manifest is not to be trusted at all;
 * after the first fault no further entries are handed out.
 * Beyond JSON.parse's reading: a second "Files" or "WAL-Ranges" field is
 * refused (it cannot be taken back once streamed).
 */
import { ManifestError } from '../errors';
import { JsonSyntaxError, JsonTokenizer, type JsonHandler } from './json-tokenizer';
import { JsonValueBuilder } from './json-value';
import { FileTable } from './file-table';
import { show, type ManifestFile, type WalRange } from './manifest-format';
import { walRangeFromJson } from './wal-ranges';
import { checkChecksum, checkHeader, systemIdentifierOf, VERSION_KEY } from './manifest-end-checks';
import { parseFileEntry } from './manifest-file-entry';
import { SealedPart } from './manifest-sealed-part';
import { CHECKSUM, FILES, FIRST_KEY, JSON_SYNTAX, ManifestFaults, NOT_OBJECT, RANGES, SYSTEM_ID, TOP_KEY, VERSION } from './manifest-faults';

/** Bytes decoded at a time: the string stays under V8's large-object size, in the young generation. */
const DECODE_BYTES = 32 * 1024;
const TOP_KEYS = new Set([VERSION_KEY, 'System-Identifier', 'Files', 'WAL-Ranges', 'Manifest-Checksum']);
/** Object.keys lists array-index keys first, whatever their place: such a key is "first". */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]{0,9})$/;
/**
 * Bounds on what one token and one entry may hold, far above what PostgreSQL writes (a path is
 * under MAXPGPATH, 2,048 hex digits encoded; an entry has 7 fields): a crafted manifest's one
 * huge string or entry of a million fields is refused or cut instead of held.
 */
const MAX_TOKEN = 1024 * 1024;
const MAX_MEMBERS = 64;
/** A manifest nests 3 levels; the tokenizer keeps a byte per level. */
const MAX_DEPTH = 1024 * 1024;
/** One range per timeline the backup crossed: a handful. The ranges are returned, so held. */
const MAX_WAL_RANGES = 100_000;

export interface PathSet {
  /** False when `path` was already added. */
  add(path: string): boolean;
}

export interface ManifestReaderOptions {
  /** Each file entry, checked, as it completes. */
  onFile?: (file: ManifestFile) => void;
  /** Where paths are remembered to refuse duplicates; default a compact table of its own. */
  paths?: PathSet;
}

export interface ManifestSummary {
  version: 1 | 2;
  systemIdentifier?: string;
  walRanges: WalRange[];
  /** File entries read. */
  files: number;
}

type Mode = 'none' | 'collect' | 'files' | 'ranges' | 'skip';

export class ManifestReader {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private readonly tokens = new JsonTokenizer(
    {
      startObject: () => this.open(true),
      startArray: () => this.open(false),
      endObject: () => this.close(),
      endArray: () => this.close(),
      key: (name) => this.onKey(name),
      scalar: (value, raw) => this.onScalar(value, raw),
    } satisfies JsonHandler,
    MAX_TOKEN,
    MAX_DEPTH,
  );
  private readonly sealed = new SealedPart();
  /** The fault to report: the first in parseManifest's order, whatever order they were met in. */
  private readonly faults = new ManifestFaults();
  /** Not UTF-8: nothing more is read, and every call says so again. */
  private broken: ManifestError | null = null;
  private readonly paths: PathSet;
  private readonly onFile?: (file: ManifestFile) => void;

  private depth = 0;
  private rootIsObject = false;
  /** Top-level keys seen (the known ones), how many, and the last new one: Object.keys' last. */
  private readonly seenKeys = new Set<string>();
  private keyCount = 0;
  private lastKey = '';
  private field = '';
  private mode: Mode = 'none';
  private builder: JsonValueBuilder | null = null;
  private readonly top: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  private systemIdRaw = '';
  private readonly walRanges: WalRange[] = [];
  private files = 0;

  constructor(opts: ManifestReaderOptions = {}) {
    this.onFile = opts.onFile;
    if (opts.paths) this.paths = opts.paths;
    else {
      const table = new FileTable(0);
      this.paths = { add: (p) => table.add(p).added };
    }
  }

  /**
   * The version and System-Identifier read so far, unchecked until end(): PostgreSQL writes
   * both before "Files", so a caller re-writing the manifest as it reads has them at the first entry.
   */
  header(): { version: unknown; systemIdentifier?: string } {
    return { version: this.top[VERSION_KEY], ...(this.systemIdRaw ? { systemIdentifier: this.systemIdRaw } : {}) };
  }

  write(piece: Buffer): void {
    if (this.broken) throw this.broken;
    // Decoded a slice at a time: a string past V8's 128 KiB regular-object limit is
    // allocated straight into the old generation and lives until a full GC, so a
    // manifest read in large pieces grew the heap by its own size at every backup's end.
    for (let at = 0; at < piece.length; at += DECODE_BYTES) {
      let text: string;
      try {
        text = this.decoder.decode(piece.subarray(at, at + DECODE_BYTES), { stream: true });
      } catch {
        throw (this.broken = new ManifestError('backup_manifest: not valid UTF-8'));
      }
      this.feed(text);
    }
    this.sealed.write(piece);
  }

  end(): ManifestSummary {
    if (this.broken) throw this.broken;
    try {
      this.feed(this.decoder.decode());
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw (this.broken = new ManifestError('backup_manifest: not valid UTF-8'));
    }
    if (this.faults.open(JSON_SYNTAX)) {
      try {
        this.tokens.end();
      } catch (err) {
        this.syntax(err);
      }
    }
    if (this.faults.open(VERSION)) checkHeader(this.top, this.lastKey, this.faults);
    if (this.faults.open(CHECKSUM)) checkChecksum(this.top, this.sealed.end(), this.faults);
    const version = this.top[VERSION_KEY] as 1 | 2;
    let systemIdentifier: string | undefined;
    if ('System-Identifier' in this.top && this.faults.open(SYSTEM_ID)) systemIdentifier = systemIdentifierOf(this.top, this.systemIdRaw, this.faults);
    const fault = this.faults.message;
    if (fault !== null) throw new ManifestError(`backup_manifest: ${fault}`);
    const out: ManifestSummary = { version, walRanges: this.walRanges, files: this.files };
    if (systemIdentifier !== undefined) out.systemIdentifier = systemIdentifier;
    return out;
  }

  // ---- bytes: UTF-8 text to the tokenizer, the last lines held for the checksum

  private feed(text: string): void {
    if (!text || !this.faults.open(JSON_SYNTAX)) return;
    try {
      this.tokens.write(text);
    } catch (err) {
      this.syntax(err);
    }
  }

  private syntax(err: unknown): void {
    if (!(err instanceof JsonSyntaxError)) throw err;
    this.faults.note(JSON_SYNTAX, `not valid JSON (${show(err.message)})`);
  }

  // ---- JSON structure (JsonHandler)

  private onKey(name: string): void {
    if (this.depth === 1) return this.topKey(name);
    if (this.rootIsObject) this.builder?.key(name);
  }

  private onScalar(value: string | number | boolean | null, raw: string): void {
    const d = this.depth;
    if (d === 0) return this.faults.note(NOT_OBJECT, 'not a JSON object');
    if (!this.rootIsObject) return;
    if (d === 1) return this.topValue(value, raw);
    if ((this.mode === 'files' || this.mode === 'ranges') && d === 2) return this.element(value);
    this.builder?.scalar(value, raw);
  }

  private open(isObject: boolean): void {
    const level = this.depth++;
    if (level === 0) {
      this.rootIsObject = isObject;
      if (!isObject) this.faults.note(NOT_OBJECT, 'not a JSON object');
      return;
    }
    if (!this.rootIsObject || this.mode === 'skip') return;
    if (level === 1) {
      const listed = this.field === 'Files' || this.field === 'WAL-Ranges';
      if (listed && !isObject) return void (this.mode = this.field === 'Files' ? 'files' : 'ranges');
      if (listed) {
        this.notArray();
        return void (this.mode = 'skip');
      }
      this.mode = 'collect';
      this.builder = new JsonValueBuilder(0, MAX_MEMBERS);
    } else if (level === 2 && (this.mode === 'files' || this.mode === 'ranges')) {
      this.builder = new JsonValueBuilder(0, MAX_MEMBERS);
    }
    if (isObject) this.builder?.startObject();
    else this.builder?.startArray();
  }

  private close(): void {
    const level = --this.depth;
    if (level === 0 || !this.rootIsObject) return;
    const mode = this.mode;
    if (level === 1) {
      if (mode === 'collect') {
        this.builder!.endObject();
        this.topValue(this.builder!.value, '');
      }
      this.builder = null;
      this.mode = 'none';
      return;
    }
    if (mode === 'skip' || !this.builder) return;
    this.builder.endObject(); // ends arrays as well: the builder only counts
    if (level === 2 && (mode === 'files' || mode === 'ranges')) {
      const v = this.builder.value;
      this.builder = null;
      this.element(v);
    }
  }

  private topKey(name: string): void {
    this.field = name;
    this.mode = 'none';
    const seen = this.seenKeys.has(name);
    if (this.keyCount++ === 0 && name !== VERSION_KEY) this.faults.note(FIRST_KEY, 'expected version indicator as the first field');
    if (ARRAY_INDEX.test(name) && Number(name) < 2 ** 32 - 1) this.faults.note(FIRST_KEY, 'expected version indicator as the first field');
    if (!TOP_KEYS.has(name)) this.faults.note(TOP_KEY, `unrecognized top-level field "${show(name)}"`);
    if (!seen) {
      this.lastKey = name;
      if (TOP_KEYS.has(name)) this.seenKeys.add(name);
    } else if (name === 'Files' || name === 'WAL-Ranges') {
      this.faults.note(TOP_KEY, `duplicate top-level field "${name}"`);
      this.mode = 'skip';
    }
  }

  /** A top-level field's value, scalar or collected. */
  private topValue(value: unknown, raw: string): void {
    const k = this.field;
    if (this.mode === 'skip') return;
    if (k === 'Files' || k === 'WAL-Ranges') {
      if (value !== null) this.notArray(); // JSON null reads as absent
      return;
    }
    if (TOP_KEYS.has(k)) this.top[k] = value; // an unknown one is a fault already: not kept
    if (k === 'System-Identifier') this.systemIdRaw = raw;
  }

  private notArray(): void {
    if (this.field === 'Files') this.faults.note(FILES, '"Files" is not an array');
    else this.faults.note(RANGES, '"WAL-Ranges" is not an array');
  }

  /** One element of Files or WAL-Ranges. */
  private element(v: unknown): void {
    if (this.mode === 'files') {
      if (!this.faults.open(FILES)) return;
      this.faults.judge(FILES, () => {
        const file = parseFileEntry(v);
        if (!this.paths.add(file.path)) throw new ManifestError(`backup_manifest: duplicate path name "${show(file.path)}"`);
        this.files++;
        if (this.faults.none) this.onFile?.(file);
      });
    } else {
      if (!this.faults.open(RANGES)) return;
      this.faults.judge(RANGES, () => {
        if (this.walRanges.length === MAX_WAL_RANGES) throw new ManifestError(`backup_manifest: more than ${MAX_WAL_RANGES} WAL ranges`);
        this.walRanges.push(walRangeFromJson(v));
      });
    }
  }
}
