/**
 * server-archive-unpack: a server-compressed BASE_BACKUP (COMPRESSION 'zstd')
 * made into the ordinary member stream.
 *
 *   pipeline(baseBackupReader, serverArchiveUnpack(), …)
 *
 * In:  the decoder's events (src/codec/protocol/base-backup-decoder.ts): each
 *      archive's bytes as `archive-bytes` events between `archive` and
 *      `archive-end`, everything else already member events.
 * Out: the member stream (src/events.ts): each archive's bytes zstd-
 *      decompressed (./zstd-decompress.ts) and tar-parsed into entry, data,
 *      entry-end; every other event passes unchanged and in order.
 * Result: `compressedBytes`, the archive bytes the network carried.
 * Errors: CompressionError for bytes that are not zstd or end inside a frame,
 * TarError for a malformed archive, naming the archive.
 *
 * Backpressure: a few compressed bytes can stand for gigabytes. The
 * decompressor is paused while this stream's reader is full, so it stops
 * decoding, holds the write callback of its chunk and, through it, this
 * stream's: the connection is paused in turn. Memory is the decompressor's
 * buffers plus the readable highWaterMark of events.
 */
import { Duplex } from 'node:stream';
import type { BackupEvent } from '../src/events';
import { ProtocolError } from '../src/errors';
import { memberParser, type ArchiveBytesEvent } from '../src/codec/protocol/base-backup-decoder';
import type { TarParser } from '../src/codec/tar/tar-parser';
import { ZstdDecompress } from './zstd-decompress';

type Callback = (err?: Error | null) => void;

interface Open {
  z: ZstdDecompress;
  tar: TarParser;
  /** An event (progress, warning) that came after bytes still in the decompressor's buffer: it goes once they are out. */
  waiting: { ev: BackupEvent; callback: Callback } | null;
}

export class ServerArchiveUnpack extends Duplex {
  readonly type = 'server-archive-unpack';
  private open: Open | null = null;
  private compressed = 0;

  constructor() {
    super({ objectMode: true, highWaterMark: 16 });
  }

  /** Archive bytes received from the server, compressed. */
  get compressedBytes(): number {
    return this.compressed;
  }

  override _write(ev: BackupEvent | ArchiveBytesEvent, _enc: BufferEncoding, callback: Callback): void {
    if (ev.type === 'archive-bytes') {
      this.compressed += ev.data.length;
      if (!this.open) return callback(new ProtocolError('compressed archive bytes outside an archive'));
      this.open.z.write(ev.data, callback);
      return;
    }
    if (ev.type === 'archive-end' && this.open) return this.finishArchive(callback);
    // A chunk's write callback means it is decoded, not that all its output has been emitted.
    if (this.open && this.open.z.readableLength > 0) {
      this.open.waiting = { ev, callback };
      return;
    }
    this.push(ev);
    if (ev.type === 'archive') this.startArchive(`${ev.name}.tar.zst`);
    callback();
  }

  override _final(callback: Callback): void {
    // The decoder never ends inside an archive; a stream that does is cut short, not complete.
    if (this.open) return callback(new ProtocolError('backup stream ended inside a compressed archive'));
    this.push(null);
    callback();
  }

  override _read(): void {
    this.open?.z.resume();
  }

  override _destroy(err: Error | null, callback: Callback): void {
    this.open?.z.destroy();
    this.open = null;
    callback(err);
  }

  private startArchive(name: string): void {
    const z = new ZstdDecompress({ name });
    const tar = memberParser((ev) => {
      if (!this.push(ev)) z.pause();
    }, name);
    const open: Open = { z, tar, waiting: null };
    z.on('data', (chunk: Buffer) => {
      try {
        tar.write(chunk);
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      if (open.waiting && z.readableLength === 0) {
        const { ev, callback } = open.waiting;
        open.waiting = null;
        this.push(ev);
        callback();
      }
    });
    z.on('error', (err) => this.destroy(err));
    this.open = open;
  }

  private finishArchive(callback: Callback): void {
    const { z, tar } = this.open!;
    z.once('end', () => {
      this.open = null;
      try {
        tar.end();
      } catch (err) {
        return callback(err as Error);
      }
      this.push({ type: 'archive-end' });
      callback();
    });
    z.end();
  }
}

export function serverArchiveUnpack(): ServerArchiveUnpack {
  return new ServerArchiveUnpack();
}
