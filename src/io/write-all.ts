/**
 * writeAllSync(fd, buf, offset, length, position): a positioned write of
 * buf[offset, offset+length) that goes on until the kernel took all of it
 * (a write may take less). Errors are the caller's to name.
 */
import { writeSync } from 'node:fs';

export function writeAllSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
  for (let done = 0; done < length; ) done += writeSync(fd, buf, offset + done, length - done, position + done);
}
