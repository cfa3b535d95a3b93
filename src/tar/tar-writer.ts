/**
 * Writes members as tar bytes into a Writable, through tar-stream's pack()
 * (ustar headers, pax for long names). Callback style so that the hot path
 * (`write`) costs no promise per chunk; every wait also ends when the pack
 * fails, so nothing hangs on a dead stream.
 */
import { pack, type Pack } from 'tar-stream';
import { pipeline } from 'node:stream';
import type { Duplex, Writable } from 'node:stream';
import type { EntryKind } from '../events';

export interface TarMemberHeader {
  name: string;
  kind: EntryKind;
  size: number;
  mode: number;
  mtime: Date;
  linkTarget?: string;
}

type Callback = (err?: Error | null) => void;

interface EntrySink {
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: string, fn: (...args: unknown[]) => void): void;
  removeListener(event: string, fn: (...args: unknown[]) => void): void;
}

export class TarWriter {
  private readonly pack: Pack;
  private entry: EntrySink | null = null;
  private error: Error | null = null;
  /** A pax comment for the next member (the backup descriptor, see src/backup-descriptor.ts). */
  private comment: string | null = null;
  private readonly finished: Promise<void>;

  /** `outs`: the byte stream's way out, e.g. [coalesce(), process.stdout]. */
  constructor(...outs: [...Duplex[], Writable]) {
    this.pack = pack();
    this.finished = new Promise((resolve, reject) => {
      pipeline([this.pack as unknown as NodeJS.ReadableStream, ...outs], (err: Error | null) => {
        if (err) {
          this.error ??= err;
          reject(err);
        } else resolve();
      });
    });
    // Rejection is observed through finalize(); keep Node from reporting it early.
    this.finished.catch(() => {});
  }

  /** Attaches `comment` (a pax record extractors ignore) to the next member added. */
  commentNext(comment: string): void {
    this.comment = comment;
  }

  /** Starts a member; directories and symlinks are complete at once. */
  add(h: TarMemberHeader): void {
    const header = {
      name: h.name,
      size: h.kind === 'file' ? h.size : 0,
      mode: h.mode,
      mtime: h.mtime,
      type: h.kind,
      linkname: h.linkTarget,
      ...(this.comment !== null ? { pax: { comment: this.comment } } : {}),
    } as const;
    this.comment = null;
    const entry = this.pack.entry(header, (err) => {
      if (err) this.error ??= err;
    }) as unknown as EntrySink;
    if (h.kind === 'file') this.entry = entry;
    else entry.end();
  }

  /** Writes member bytes; calls back once the pack can take more. */
  write(chunk: Buffer, callback: Callback): void {
    const entry = this.entry;
    if (this.error || !entry) return callback(this.error ?? new Error('tar data outside a member'));
    if (entry.write(chunk)) return callback();
    this.waitDrain(entry, callback);
  }

  private waitDrain(entry: EntrySink, callback: Callback): void {
    const done = (err?: unknown) => {
      entry.removeListener('drain', onDrain);
      entry.removeListener('close', onClose);
      callback(err ? (err as Error) : this.error);
    };
    const onDrain = () => done();
    const onClose = () => done(this.error ?? new Error('tar stream closed'));
    entry.once('drain', onDrain);
    entry.once('close', onClose);
  }

  endEntry(): void {
    this.entry?.end();
    this.entry = null;
  }

  /** Writes the end-of-archive marker and waits until `out` has everything. */
  async finalize(): Promise<void> {
    if (this.error) throw this.error;
    this.pack.finalize();
    await this.finished;
    if (this.error) throw this.error;
  }

  destroy(err?: Error): void {
    this.pack.destroy(err);
  }
}
