/**
 * BASE_BACKUP's reply, decoded into the member stream (src/events.ts). Pure:
 * the connection hands it the command's messages (src/codec/protocol/
 * command-messages.ts CommandHandler), it hands out events in order.
 *
 * In, PostgreSQL 15+:
 *   T D(start LSN, TLI)   T D*(one per tablespace, base last)
 *   H  CopyData: 'n' archive … 'd' bytes … 'p' progress … 'm' manifest 'd'…  c
 *   T D(end LSN, TLI)  C  (Z is the connection's)
 * In, PostgreSQL 13/14: the same rows, but one CopyOut (H d… c) per tablespace
 *   row, in order, each a bare tar stream; then one more for the manifest.
 * Out: start, (archive entry data* entry-end … archive-end)*, manifest* (each
 *   piece as it arrives, never joined), progress and warning anywhere; the
 *   end position from finish(). `onStart` / `onEnd` hear the positions the
 *   moment the server reports them (a WAL stream starts and stops there).
 *
 * Checksum failures come as WARNINGs (collected, up to 10) then an
 * ErrorResponse XX001 at the end: mapError() turns it into a ChecksumError
 * that lists them.
 * Errors: ProtocolError for any out-of-order message (data before an
 * archive, an archive after the manifest, a second start or end row, an
 * archive name that is not base.tar or <oid>.tar — or, with `compressed`,
 * base.tar.zst / <oid>.tar.zst), TarError from a malformed archive.
 *
 * Server-compressed (`compressed`, BASE_BACKUP COMPRESSION 'zstd'): the
 * archive's bytes are not parsed here (decompressing is not synchronous work)
 * but handed on as `archive-bytes` events between `archive` and `archive-end`;
 * transforms/server-archive-unpack.ts turns them into members.
 */
import { ChecksumError, ProtocolError, ServerError } from '../../errors';
import type { BackupEvent, StartEvent, Tablespace } from '../../events';
import { TarParser } from '../tar/tar-parser';
import type { ServerNotice } from './backend-parser';
import { decodeCopyData } from './base-backup';
import type { CommandHandler } from './command-messages';
import { hasOptionListGrammar } from '../server-version';

/** What the start event says beyond the server's rows (src/net/server-settings.ts, the options). */
export type StartFacts = Omit<StartEvent, 'type' | 'timeline' | 'startLsn' | 'tablespaces' | 'totalBytes'>;

/** A server-compressed archive's bytes, as they arrived: only between the decoder and the stage that unpacks them. */
export interface ArchiveBytesEvent {
  type: 'archive-bytes';
  data: Buffer;
}

export interface BaseBackupDecoderOptions {
  start: StartFacts;
  emit(ev: BackupEvent | ArchiveBytesEvent): void;
  /** The server zstd-compresses the archives: hand their bytes on unparsed. */
  compressed?: boolean;
  /** BASE_BACKUP TARGET server|blackhole: archives are named but carry no bytes (and the manifest none). */
  noData?: boolean;
  /** The start position: the checkpoint is over. */
  onStart?(lsn: string, timeline: number): void;
  /** The end position, as soon as the server sends it. */
  onEnd?(lsn: string, timeline: number): void;
}

export interface Position {
  lsn: string;
  tli: number;
}

type Phase = 'start-header' | 'start-row' | 'tablespaces' | 'copy' | 'end-row' | 'done';

const MAX_LISTED = 10;

export class BaseBackupDecoder implements CommandHandler {
  private phase: Phase = 'start-header';
  private readonly legacy: boolean;
  private startPos: Position | null = null;
  private endPos: Position | null = null;
  private readonly tablespaces: Tablespace[] = [];
  private totalBytes: number | null = null;
  private tar: TarParser | null = null;
  /** A compressed archive is open: its bytes go on as they are. */
  private raw: { bytes: number; name: string } | null = null;
  /** noData: an archive is open (named, no bytes). */
  private open = false;
  /** Within a CopyOut (legacy: each one; 15+: the one). */
  private copying = false;
  private inManifest = false;
  private manifestSeen = false;
  private legacyCopies = 0;
  private readonly listed: string[] = [];
  private failures = 0;
  private serverTotal = 0;
  /** Parts of a split CopyData: 'bytes' for archive/manifest bytes (handed on as they come), else joined. */
  private partKind: 'bytes' | 'joined' | null = null;
  private joined: Buffer[] = [];

  constructor(private readonly o: BaseBackupDecoderOptions) {
    this.legacy = !hasOptionListGrammar(o.start.serverVersion);
  }

  rowDescription(): void {
    if (this.phase === 'start-header') this.phase = 'start-row';
    else if (this.phase === 'start-row' && this.startPos) this.phase = 'tablespaces';
    else if (this.phase === 'copy' && !this.copying) this.phase = 'end-row';
    else throw new ProtocolError(`unexpected row description during BASE_BACKUP (${this.phase})`);
  }

  dataRow(values: (string | null)[]): void {
    switch (this.phase) {
      case 'start-row': {
        if (this.startPos) throw new ProtocolError('a second start position row from BASE_BACKUP');
        this.startPos = { lsn: values[0] ?? '', tli: Number(values[1]) };
        this.o.onStart?.(this.startPos.lsn, this.startPos.tli);
        return;
      }
      case 'tablespaces': {
        const size = values[2] == null ? null : Number(values[2]) * 1024;
        this.tablespaces.push({ oid: values[0], location: values[1] ?? '', size });
        return;
      }
      case 'end-row':
        if (this.endPos) throw new ProtocolError('a second end position row from BASE_BACKUP');
        this.endPos = { lsn: values[0] ?? '', tli: Number(values[1]) };
        this.o.onEnd?.(this.endPos.lsn, this.endPos.tli);
        return;
      default:
        throw new ProtocolError(`unexpected data row during BASE_BACKUP (${this.phase})`);
    }
  }

  copyStart(kind: 'out' | 'both' | 'in'): void {
    if (kind !== 'out') throw new ProtocolError(`unexpected copy-${kind} response to BASE_BACKUP`);
    if (this.phase === 'tablespaces') {
      this.phase = 'copy';
      this.emitStart();
    } else if (this.phase !== 'copy' || this.copying || !this.legacy) {
      throw new ProtocolError(`unexpected copy response during BASE_BACKUP (${this.phase})`);
    }
    this.copying = true;
    if (!this.legacy) return;
    // 13/14: one CopyOut per tablespace row in order, then one for the manifest.
    if (this.legacyCopies < this.tablespaces.length) {
      const ts = this.tablespaces[this.legacyCopies++];
      this.openArchive(ts.oid === null ? 'base.tar' : `${ts.oid}.tar`, ts.location);
    } else if (!this.manifestSeen) {
      this.manifestSeen = this.inManifest = true;
    } else {
      throw new ProtocolError('a copy response after the manifest of BASE_BACKUP');
    }
  }

  copyData(payload: Buffer): void {
    if (!this.copying) throw new ProtocolError('copy data outside a copy response during BASE_BACKUP');
    if (this.legacy) return this.bytes(payload);
    const msg = decodeCopyData(payload);
    switch (msg.kind) {
      case 'data':
        return this.bytes(msg.data);
      case 'archive':
        if (this.manifestSeen) throw new ProtocolError('new archive after the manifest');
        this.openArchive(msg.name, msg.location);
        return;
      case 'progress':
        this.o.emit({ type: 'progress', done: msg.done, total: this.totalBytes });
        return;
      case 'manifest':
        if (this.manifestSeen) throw new ProtocolError('a second manifest in BASE_BACKUP');
        this.closeArchive();
        this.manifestSeen = this.inManifest = true;
        return;
    }
  }

  /**
   * A CopyData split across socket reads, in parts (BackendParser's
   * CopyPartHandler): archive and manifest bytes go on part by part, without
   * the copy joining them would cost; the small sub-messages are joined.
   */
  copyDataPart(part: Buffer, first: boolean, last: boolean): void {
    if (first) {
      if (!this.copying) throw new ProtocolError('copy data outside a copy response during BASE_BACKUP');
      this.partKind = this.legacy || part[0] === 0x64 ? 'bytes' : 'joined';
      if (this.partKind === 'bytes' && !this.legacy) part = part.subarray(1);
    }
    if (this.partKind === 'bytes') {
      if (part.length) this.bytes(part);
    } else {
      // A copy: the part is a view of read memory that may be reused once the call returns (src/io/slab-pool.ts); these messages are small.
      this.joined.push(Buffer.from(part));
    }
    if (!last) return;
    const joined = this.joined;
    const kind = this.partKind;
    this.partKind = null;
    this.joined = [];
    if (kind === 'joined') this.copyData(Buffer.concat(joined));
  }

  copyDone(): void {
    if (!this.copying) throw new ProtocolError('copy done outside a copy response during BASE_BACKUP');
    this.copying = false;
    this.closeArchive();
    this.inManifest = false;
  }

  commandComplete(): void {
    if (this.copying) throw new ProtocolError('BASE_BACKUP completed inside its copy response');
  }

  notice(n: ServerNotice): void {
    const { severity, message } = n;
    const code = /checksum/i.test(message) ? 'checksum' : 'server';
    // Kept for the final error; bounded, the server's own total says the rest.
    if (code === 'checksum' && /failed in file/.test(message)) {
      if (this.listed.length < MAX_LISTED) this.listed.push(message);
      this.failures++;
    }
    const total = /^(\d+) total checksum verification failures$/.exec(message);
    if (total) this.serverTotal = Number(total[1]);
    this.o.emit({ type: 'warning', code, message: severity && severity !== 'WARNING' ? `${severity.toLowerCase()}: ${message}` : message });
  }

  /** After the command's success: the end position. */
  finish(): Position {
    if (this.copying || this.tar || this.raw || this.open) throw new ProtocolError('server ended BASE_BACKUP inside an archive');
    if (!this.endPos) throw new ProtocolError('server ended BASE_BACKUP without reporting the end position');
    this.phase = 'done';
    return this.endPos;
  }

  /** The command's failure as pgbb reports it: XX001 lists the checksum failures seen. */
  mapError(err: unknown): Error {
    if (err instanceof ServerError && err.sqlstate === 'XX001') {
      const more = Math.max(this.serverTotal, this.failures) - this.listed.length;
      const detail = this.listed.length ? `: ${this.listed.join('; ')}${more > 0 ? `; and ${more} more` : ''}` : '';
      return new ChecksumError(`${err.message}${detail}`, { cause: err });
    }
    return err as Error;
  }

  private emitStart(): void {
    const known = this.tablespaces.every((t) => t.size !== null);
    this.totalBytes = known ? this.tablespaces.reduce((a, t) => a + (t.size ?? 0), 0) : null;
    const { incremental, ...facts } = this.o.start;
    this.o.emit({
      type: 'start',
      ...facts,
      timeline: this.startPos!.tli,
      startLsn: this.startPos!.lsn,
      tablespaces: this.tablespaces,
      totalBytes: this.totalBytes,
      ...(incremental ? { incremental: true } : {}),
    });
  }

  private bytes(data: Buffer): void {
    if (this.o.noData && data.length) throw new ProtocolError('server sent backup data although the backup has a server-side target');
    if (this.inManifest) {
      if (data.length) this.o.emit({ type: 'manifest', data });
    } else if (this.raw) {
      this.raw.bytes += data.length;
      if (data.length) this.o.emit({ type: 'archive-bytes', data });
    } else if (this.tar) this.tar.write(data);
    else throw new ProtocolError('archive data before any archive started');
  }

  private openArchive(fileName: string, location: string): void {
    this.closeArchive();
    const suffix = this.o.compressed ? '.tar.zst' : '.tar';
    const name = fileName.endsWith(suffix) ? fileName.slice(0, -suffix.length) : null;
    if (name === null || (name !== 'base' && !/^\d+$/.test(name))) {
      throw new ProtocolError(`unexpected archive "${fileName}" from server (expected base${suffix} or <oid>${suffix})`);
    }
    const emit = this.o.emit;
    emit({ type: 'archive', kind: name === 'base' ? 'base' : 'tablespace', name, location });
    if (this.o.noData) this.open = true;
    else if (this.o.compressed) this.raw = { bytes: 0, name: fileName };
    else this.tar = memberParser(emit, fileName);
  }

  private closeArchive(): void {
    if (this.open) {
      this.open = false;
      this.o.emit({ type: 'archive-end' });
      return;
    }
    if (this.raw) {
      // A compressor always writes a frame: no bytes at all would pass for an empty archive.
      if (this.raw.bytes === 0) throw new ProtocolError(`server sent no bytes for compressed archive "${this.raw.name}"`);
      this.raw = null;
      this.o.emit({ type: 'archive-end' });
      return;
    }
    if (!this.tar) return;
    const tar = this.tar;
    this.tar = null;
    tar.end();
    this.o.emit({ type: 'archive-end' });
  }
}

/** A tar parser whose members come out as member events (entry, data, entry-end). */
export function memberParser(emit: (ev: BackupEvent) => void, archiveName: string): TarParser {
  return new TarParser(
    {
      entry: (m) => emit({ type: 'entry', path: m.path, kind: m.kind, size: m.size, mode: m.mode, mtime: m.mtime, linkTarget: m.linkTarget }),
      data: (chunk, offset) => emit({ type: 'data', offset, chunk }),
      entryEnd: () => emit({ type: 'entry-end' }),
    },
    { archiveName },
  );
}
