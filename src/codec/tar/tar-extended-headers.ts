/**
 * The records that describe the next member rather than being one: pax 'x'
 * (path, linkpath, size, mtime, comment), GNU 'L'/'K' (long name / link name),
 * and pax global 'g' records (handed on, pgbb keeps its backup descriptor
 * there). Split from tar-parser.ts so the parser's state machine only frames
 * blocks; this holds what is pending until the next real header takes it.
 */

import { TarFormatError } from '../../errors';
import { PaxOverrides, decodeLongName, decodePax, decodePaxOverrides } from './header';

/** Upper bound for pax and GNU long-name payloads. */
export const MAX_META_SIZE = 1024 * 1024;

/** Header types whose payload is metadata (read whole, bounded by MAX_META_SIZE). */
export function isExtendedType(type: string): boolean {
  return type === 'x' || type === 'g' || type === 'L' || type === 'K';
}

/** What the extended headers seen since the last member say about the next one. */
export interface PendingOverrides {
  pax: PaxOverrides;
  longName?: string;
  longLink?: string;
}

export class ExtendedHeaders {
  private pax: PaxOverrides | null = null;
  private longName: string | undefined;
  private longLink: string | undefined;

  /**
   * Takes in one extended header's payload. Returns the records of a 'g'
   * header (for the handler), else undefined. `member` and `archive` name it in errors.
   */
  absorb(type: string, payload: Buffer, member: string, archive: string): Record<string, string> | undefined {
    if (type === 'L') {
      this.longName = decodeLongName(payload);
    } else if (type === 'K') {
      this.longLink = decodeLongName(payload);
    } else if (type === 'g') {
      try {
        return decodePax(payload);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new TarFormatError(`${message} in pax global header "${member}" of ${archive}`, { cause: err });
      }
    } else {
      try {
        this.pax = decodePaxOverrides(payload);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new TarFormatError(`${message} in pax header "${member}" of ${archive}`, { cause: err });
      }
    }
    return undefined;
  }

  /** True while an 'x', 'L' or 'K' header waits for its member. */
  get pending(): boolean {
    return this.pax !== null || this.longName !== undefined || this.longLink !== undefined;
  }

  /** Hands the pending overrides to the member header that follows, and forgets them. */
  take(): PendingOverrides {
    const out: PendingOverrides = { pax: this.pax ?? {}, longName: this.longName, longLink: this.longLink };
    this.pax = null;
    this.longName = this.longLink = undefined;
    return out;
  }
}
