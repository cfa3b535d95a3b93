/**
 * The verdict on a re-read copy of a page that failed its checksum, for
 * page-checksum-verify. A read can race a write, so the page is read once
 * more and judged on the new copy: gone (truncated meanwhile: WAL replay
 * restores it), new, or written since the start is not a failure; else its
 * checksums decide. Only the verdict changes, not the data passed on: WAL
 * replay restores a page written during the backup from its full-page image.
 * Split from page-checksum-verify.ts, which does the reading.
 */
import { IoError } from '../src/errors';
import type { PageScanner } from './page-scan';

/**
 * `page`: what `reread(path, index)` returned. Null: not a failure (the
 * caller counts it skipped); else the new copy's checksums. A copy of the
 * wrong size is an IoError naming the file as the server does (`shown`).
 */
export function rereadVerdict(
  page: Buffer | null,
  file: { shown: string; segno: number },
  index: number,
  pages: PageScanner,
): { calculated: number; expected: number } | null {
  if (page !== null && page.length !== pages.blockSize) {
    throw new IoError(`could not re-read block ${index} of file "${file.shown}": got ${page.length} bytes, expected ${pages.blockSize}`);
  }
  if (page === null || !pages.shouldCheck(page, 0)) return null;
  return pages.checksums(page, 0, file.segno, index);
}
