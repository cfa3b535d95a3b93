/**
 * control-identity-verify: checks that the backup's `global/pg_control`
 * belongs to the cluster the backup says it is of (observer, a Verifier).
 *
 * Why: every valid pg_control has the same CRC32C (it embeds its own), so
 * with a version 1 manifest (PostgreSQL ≤ 16, no System-Identifier) another
 * cluster's pg_control of the same size passes pg_verifybackup. pgbb knows
 * the system identifier from elsewhere: the `start` event (the server's
 * IDENTIFY_SYSTEM, kept in the descriptor of pgbb's tar archives) and, in a
 * plain backup, the header of pgbb's chunk map (pg_wal/pgbb.chunkmap). For a
 * backup whose start was itself read from pg_control (a plain directory,
 * pg_basebackup's tar), the start side agrees by construction and the
 * chunk map, when there is one, is the witness. (A version 2 manifest's
 * System-Identifier is checked by manifest-verify.)
 *
 * In: member events. Watched: base's global/pg_control and the first bytes
 *     of pg_wal/pgbb.chunkmap (its header; the map is not read whole).
 * Out: the same events. At `end`: a problem for each identity that differs,
 *     or for a pg_control that does not parse; nothing when pg_control is
 *     absent (manifest-verify says it is missing).
 * Errors: in mode 'fail', a PgbbError
 *     'pg_control' at end; in 'report', outcome() lists them.
 */
import type { DataEvent, EntryEvent } from '../src/events';
import { PgbbError } from '../src/errors';
import { parseControlFile } from '../src/codec/pg-control';
import { CHUNK_MAP_FILE } from '../src/codec/chunkmap/chunk-map';
import type { Verifier, VerifierMode, VerifierOutcome } from '../src/verifier';
import { ProblemList, verifierMode } from '../src/verify/problem-list';
import { Observer } from './observer';

const CONTROL = 'global/pg_control';
/** pg_control is 8 KiB; the chunk map's header sits in its first bytes. */
const CAP = 64 * 1024;

export interface ControlIdentityOptions {
  mode?: VerifierMode;
}

export class ControlIdentityVerify extends Observer implements Verifier {
  private readonly mode: 'fail' | 'report';
  private readonly problems = new ProblemList('pg_control');
  private capturing: string | null = null;
  private readonly held = new Map<string, Buffer[]>();
  private heldBytes = 0;

  constructor(o: ControlIdentityOptions = {}) {
    super();
    this.mode = verifierMode(o.mode, 'pg_control');
  }

  protected override onEntry(ev: EntryEvent): void {
    const wanted = this.archive?.kind === 'base' && ev.kind === 'file' && (ev.path === CONTROL || ev.path === CHUNK_MAP_FILE);
    this.capturing = wanted ? ev.path : null;
    this.heldBytes = 0;
    if (wanted) this.held.set(ev.path, []);
  }

  protected override onData(ev: DataEvent): void {
    if (!this.capturing || this.heldBytes >= CAP) return;
    const piece = ev.chunk.subarray(0, CAP - this.heldBytes);
    // Copied: the source may reuse its buffers once the event has passed.
    this.held.get(this.capturing)!.push(Buffer.from(piece));
    this.heldBytes += piece.length;
  }

  protected override onEntryEnd(): void {
    this.capturing = null;
  }

  protected override onEnd(): void {
    const control = this.held.get(CONTROL);
    const start = this.startEvent;
    if (!control || !start) return;
    let id: string;
    try {
      id = parseControlFile(Buffer.concat(control), CONTROL).systemIdentifier;
    } catch (err) {
      this.problems.add((err as Error).message);
      return this.settle();
    }
    if (id !== start.systemIdentifier) {
      this.problems.add(`${CONTROL} is of system ${id}, but the backup was taken from system ${start.systemIdentifier}`);
    }
    const map = this.held.get(CHUNK_MAP_FILE);
    const recorded = map ? chunkMapSystem(Buffer.concat(map)) : null;
    if (recorded && recorded !== id) {
      this.problems.add(`${CONTROL} is of system ${id}, but the backup's ${CHUNK_MAP_FILE} records system ${recorded}`);
    }
    return this.settle();
  }

  private settle(): void {
    if (this.mode === 'fail' && this.problems.count) throw new PgbbError('pg_control', this.problems.outcome().problems.join('; '));
  }

  outcome(): VerifierOutcome {
    return this.problems.outcome();
  }
}

/** The system identifier in a chunk map's header (magic, version, chunk size, hash bytes, header length, JSON), or null. */
function chunkMapSystem(buf: Buffer): string | null {
  if (buf.length < 24 || buf.toString('latin1', 0, 8) !== 'PGBBCMAP') return null;
  const len = buf.readUInt32LE(20);
  if (24 + len > buf.length) return null;
  try {
    const h = JSON.parse(buf.toString('utf8', 24, 24 + len)) as { systemIdentifier?: unknown };
    return typeof h.systemIdentifier === 'string' ? h.systemIdentifier : null;
  } catch {
    return null;
  }
}

export function controlIdentityVerify(o?: ControlIdentityOptions): ControlIdentityVerify {
  return new ControlIdentityVerify(o);
}
