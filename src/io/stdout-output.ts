/**
 * Where `-D -` writes. When standard output is a file or a device such as
 * /dev/null or a tape: a Writable on fd 1 that gathers chunks by reference
 * and writes each 256 KiB with one writev (WriteBatcher), where
 * process.stdout makes one write() per chunk — per ~32 KiB CopyData piece,
 * since tar-pack no longer copies data into batches. A pipe, socket or
 * terminal keeps process.stdout: fd 1 may be non-blocking there (a
 * synchronous writev would fail with EAGAIN), and libuv waits for it.
 */
import { fstatSync } from 'node:fs';
import { Writable } from 'node:stream';
import { WriteBatcher } from './file-writer';

export function stdoutOutput(): Writable {
  let direct = false;
  try {
    const st = fstatSync(1);
    direct = st.isFile() || (st.isCharacterDevice() && !process.stdout.isTTY);
  } catch {
    direct = false;
  }
  return direct ? new FdOutput(1, 'standard output') : (process.stdout as unknown as Writable);
}

/** Writes to a descriptor it does not own (never closed here), at the descriptor's position. */
export class FdOutput extends Writable {
  private readonly batcher: WriteBatcher;

  constructor(fd: number, name: string) {
    super({ highWaterMark: 1024 * 1024 });
    this.batcher = new WriteBatcher({ fd }, name, null);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    const due = this.batcher.add(chunk);
    if (due) due.then(() => callback(), callback);
    else callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.batcher.flush().then(() => callback(), callback);
  }
}
