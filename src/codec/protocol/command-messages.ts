/**
 * The backend messages of one simple-query command (and its copy
 * sub-protocol), decoded and handed to a handler by type. Pure: no socket,
 * no state — the connection (src/net/command-runner.ts) and the decoder's
 * tests feed it what BackendParser frames.
 *
 * In:  `(code, body)` of one message (src/codec/protocol/backend-parser.ts).
 * Out: one handler call. ErrorResponse, NoticeResponse and ReadyForQuery are
 *      handed on decoded; what they mean for the session is the caller's.
 * Errors: ProtocolError for a message type a replication command never sees.
 */
import { ProtocolError } from '../../errors';
import { parseDataRow, parseNotice, parseRowDescription, type ServerNotice } from './backend-parser';

/** What a command's caller hears: all optional (BASE_BACKUP's decoder uses most, SHOW only rows). */
export interface CommandHandler {
  rowDescription?(columns: string[]): void;
  dataRow?(values: (string | null)[]): void;
  commandComplete?(tag: string): void;
  /** CopyOutResponse ('H'), CopyBothResponse ('W') or CopyInResponse ('G'). */
  copyStart?(kind: 'out' | 'both' | 'in'): void;
  copyData?(payload: Buffer): void;
  /**
   * With this, a CopyData split across socket reads comes in parts instead
   * of joined into a copy (see BackendParser's CopyPartHandler); whole
   * messages still come to copyData.
   */
  copyDataPart?(part: Buffer, first: boolean, last: boolean): void;
  /** copyData keeps nothing of its payload past the call: a joined one's buffer may be reused for the next. */
  copyDataTransient?: boolean;
  copyDone?(): void;
  notice?(notice: ServerNotice): void;
}

/** A CommandHandler plus the messages that end or frame a command. */
export interface BackendHandler extends CommandHandler {
  error(notice: ServerNotice): void;
  ready(): void;
}

export function dispatchMessage(code: number, body: Buffer, h: BackendHandler): void {
  switch (code) {
    case 0x64: // 'd' CopyData
      h.copyData?.(body);
      return;
    case 0x44: // 'D' DataRow
      h.dataRow?.(parseDataRow(body));
      return;
    case 0x4e: // 'N' NoticeResponse: may come between CopyData messages
      h.notice?.(parseNotice(body));
      return;
    case 0x54: // 'T' RowDescription
      h.rowDescription?.(parseRowDescription(body));
      return;
    case 0x43: // 'C' CommandComplete
      h.commandComplete?.(body.toString('utf8', 0, Math.max(0, body.length - 1)));
      return;
    case 0x48: // 'H'
      h.copyStart?.('out');
      return;
    case 0x57: // 'W'
      h.copyStart?.('both');
      return;
    case 0x47: // 'G'
      h.copyStart?.('in');
      return;
    case 0x63: // 'c' CopyDone
      h.copyDone?.();
      return;
    case 0x45: // 'E' ErrorResponse: the command is over; ReadyForQuery follows
      h.error(parseNotice(body));
      return;
    case 0x5a: // 'Z' ReadyForQuery
      h.ready();
      return;
    case 0x53: // 'S' ParameterStatus
    case 0x41: // 'A' NotificationResponse
    case 0x49: // 'I' EmptyQueryResponse
      return;
    default:
      throw new ProtocolError(`unexpected message type '${String.fromCharCode(code)}' from server`);
  }
}
