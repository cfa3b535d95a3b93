/**
 * tar-unpack: tar bytes in, the member stream (src/events.ts) out — the
 * inverse of tarPack() (the `pgbb backup -D -` layout):
 *
 *   pipeline(fs.createReadStream('b.tar.zst'), zstdDecompress(), tarUnpack(), sink)
 *
 * The descriptor on the first member (src/codec/backup-descriptor.ts) gives
 * `start`; members under `pg_tblspc/<oid>/` become that tablespace's archive
 * again, the rest base's, and base gets its `pg_tblspc/<oid>` symlinks back
 * (at its end, once pg_tblspc exists); `backup_manifest` comes out as
 * `manifest` events (pieces of at most 256 KiB, by reference: never held
 * whole), then `end` with the manifest's end LSN.
 *
 * Backpressure: each input chunk is parsed at once (src/codec/tar/tar-parser.ts,
 * zero-copy), and its write callback waits until the reader has taken the
 * events: memory is one input chunk whatever the archive's size.
 * Errors: UsageError when given member events (./stream-kinds.ts);
 * PgbbError 'not_a_backup' for input without a descriptor or without members;
 * TarFormatError for a truncated or malformed stream (no end-of-archive
 * marker: a stream cut short fails) or a member after backup_manifest;
 * IoError for a manifest member larger than a manifest can be.
 */
import { Duplex } from 'node:stream';
import type { BackupEvent, EntryEvent } from '../src/events';
import { IoError, PgbbError, TarFormatError } from '../src/errors';
import { TarParser, type TarMember } from '../src/codec/tar/tar-parser';
import { decodeDescriptor, startFromDescriptor, type BackupDescriptor } from '../src/codec/backup-descriptor';
import { showPath } from '../src/codec/path-bytes';
import { LIMITS } from '../src/io/read-limited';
import { guardBytes, type Stage } from './stream-kinds';

export interface TarUnpackOptions {
  /** What the bytes are ("standard input", a file name), for messages. */
  name?: string;
}

type Callback = (err?: Error | null) => void;

export const MANIFEST_PIECE_BYTES = 256 * 1024;

export class TarUnpack extends Duplex implements Stage<'bytes', 'members'> {
  readonly takes = 'bytes' as const;
  readonly gives = 'members' as const;
  readonly stageName = 'tarUnpack()';
  private readonly name: string;
  private readonly parser: TarParser;
  private full = false;
  private waiting: Callback | null = null;
  private descriptor: BackupDescriptor | null = null;
  private locations = new Map<string, string>();
  /** The archive now open: 'base', a tablespace OID, or null. */
  private current: string | null = null;
  private prefixLen = 0;
  private manifest: 'none' | 'reading' | 'read' = 'none';
  private readonly endScanner = new ManifestEndScanner();
  /** The member being left out (a tablespace's own directory): its entry-end goes too. */
  private skipping = false;

  constructor(opts: TarUnpackOptions = {}) {
    super({ readableObjectMode: true, readableHighWaterMark: 16, writableHighWaterMark: 64 * 1024 });
    this.name = opts.name ?? 'the tar stream';
    this.parser = new TarParser(
      { entry: (m) => this.entry(m), data: (c, o) => this.data(c, o), entryEnd: () => this.entryEnd() },
      { archiveName: this.name, requireEndMarker: true },
    );
    guardBytes(this, 'a member stream needs no tarUnpack()');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: Callback): void {
    try {
      this.parser.write(chunk);
    } catch (err) {
      return callback(err as Error);
    }
    if (this.full) this.waiting = callback;
    else callback();
  }

  override _final(callback: Callback): void {
    try {
      this.parser.end();
      const d = this.descriptor;
      if (!d) throw new PgbbError('not_a_backup', `${this.name} is empty`);
      this.closeArchive();
      const end = this.endScanner.result();
      this.emit1({ type: 'end', endLsn: end.endLsn, timeline: end.timeline || d.timeline });
    } catch (err) {
      return callback(err as Error);
    }
    this.push(null);
    callback();
  }

  override _read(): void {
    this.full = false;
    const cb = this.waiting;
    this.waiting = null;
    cb?.();
  }

  private entry(m: TarMember): void {
    let d = this.descriptor;
    if (!d) {
      d = this.descriptor = decodeDescriptor(m.comment);
      if (!d && m.path === 'backup_label') {
        // pg_basebackup -D - -Ft: what a descriptor says comes from pg_control, at the archive's end.
        throw new PgbbError('not_a_backup', `${this.name} is a tar stream without pgbb's descriptor (pg_basebackup -D - -Ft?): pgbb reads one from a directory, save it as base.tar in an empty directory and give that`);
      }
      if (!d) throw new PgbbError('not_a_backup', `${this.name} carries no pgbb backup descriptor (not written by pgbb?)`);
      this.locations = new Map(d.tablespaces.map((t) => [t.oid, t.location]));
      this.emit1(startFromDescriptor(d));
    }
    if (this.manifest !== 'none') throw new TarFormatError(`member "${showPath(m.path)}" after backup_manifest in ${this.name}`);
    const ev: EntryEvent = { type: 'entry', path: m.path, kind: m.kind, size: m.size, mode: m.mode, mtime: m.mtime, linkTarget: m.linkTarget };
    if (m.path === 'backup_manifest') {
      // Refuse at its header what no manifest can be.
      if (m.size > LIMITS.manifest.maxBytes) {
        throw new IoError(`backup_manifest member of ${this.name} holds ${m.size} bytes, more than ${LIMITS.manifest.maxBytes}, the most a manifest can: refusing to read it`);
      }
      this.closeArchive();
      this.manifest = 'reading';
      return;
    }
    const ts = /^pg_tblspc\/(\d+)(?:\/(.*))?$/.exec(m.path);
    let target = 'base';
    this.prefixLen = 0;
    if (ts && this.locations.has(ts[1])) {
      target = ts[1];
      if (ts[2] === undefined) {
        // The tablespace's own directory entry opens its archive.
        this.open(target);
        this.skipping = true;
        return;
      }
      this.prefixLen = `pg_tblspc/${target}/`.length;
    }
    this.open(target);
    this.emit1(this.prefixLen ? { ...ev, path: ev.path.slice(this.prefixLen) } : ev);
  }

  private data(chunk: Buffer, offset: number): void {
    if (this.manifest === 'reading') {
      this.endScanner.feed(chunk);
      for (let at = 0; at < chunk.length; at += MANIFEST_PIECE_BYTES) {
        this.emit1({ type: 'manifest', data: chunk.subarray(at, at + MANIFEST_PIECE_BYTES) });
      }
    } else if (!this.skipping) {
      this.emit1({ type: 'data', offset, chunk });
    }
  }

  private entryEnd(): void {
    if (this.manifest === 'reading') this.manifest = 'read';
    else if (this.skipping) this.skipping = false;
    else this.emit1({ type: 'entry-end' });
  }

  private open(target: string): void {
    if (this.current === target) return;
    this.closeArchive();
    this.current = target;
    this.emit1(
      target === 'base'
        ? { type: 'archive', kind: 'base', name: 'base', location: '' }
        : { type: 'archive', kind: 'tablespace', name: target, location: this.locations.get(target)! },
    );
  }

  /** Ends the open archive; base gets its tablespace links back first, whichever archive follows it. */
  private closeArchive(): void {
    const archive = this.current;
    if (!archive) return;
    this.current = null;
    if (archive === 'base') {
      for (const t of this.descriptor!.tablespaces) {
        this.emit1({ type: 'entry', path: `pg_tblspc/${t.oid}`, kind: 'symlink', size: 0, mode: 0o777, mtime: new Date(), linkTarget: t.location });
        this.emit1({ type: 'entry-end' });
      }
    }
    this.emit1({ type: 'archive-end' });
  }

  private emit1(ev: BackupEvent): void {
    if (!this.push(ev)) this.full = true;
  }
}

const END_RANGE = /"Timeline": (\d+), "Start-LSN": "[0-9A-F/]+", "End-LSN": "([0-9A-F]+\/[0-9A-F]+)"/;
/** Longer than any END_RANGE match, so that one split between two pieces is found. */
const CARRY = 256;

/**
 * The backup's end from a manifest read in pieces: its first WAL range's
 * End-LSN (newest timeline first, backup_manifest.c), as manifestEnd() in
 * src/codec/backup-label.ts finds it in a whole manifest.
 */
export class ManifestEndScanner {
  private carry = '';
  private found: { endLsn: string; timeline: number } | null = null;

  feed(piece: Buffer): void {
    if (this.found) return;
    const text = this.carry + piece.toString('latin1');
    const m = END_RANGE.exec(text);
    if (m) this.found = { endLsn: m[2], timeline: Number(m[1]) };
    else this.carry = text.slice(-CARRY);
  }

  result(): { endLsn: string; timeline: number } {
    return this.found ?? { endLsn: '0/0', timeline: 0 };
  }
}

export function tarUnpack(opts?: TarUnpackOptions): TarUnpack {
  return new TarUnpack(opts);
}
