/**
 * Backend messages as a server frames them, for scripted protocol tests (the
 * base-backup decoder's, the fake server's): RowDescription, DataRow,
 * CopyOutResponse, CopyData, CopyDone, CommandComplete, Notice/Error,
 * ReadyForQuery, and a small tar archive.
 */
import { frontendMessage } from '../../src/codec/protocol/backend-parser';
import { encodeHeader } from '../../src/codec/tar/encode-header';

export const msg = (code: string, body: Buffer = Buffer.alloc(0)): Buffer => frontendMessage(code, body);

export function rowDescription(names: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, names.length])];
  for (const n of names) parts.push(Buffer.from(n + '\0'), Buffer.alloc(18));
  return msg('T', Buffer.concat(parts));
}

export function dataRow(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const v of values) {
    const len = Buffer.alloc(4);
    if (v === null) {
      len.writeInt32BE(-1);
      parts.push(len);
    } else {
      const b = Buffer.from(v);
      len.writeInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return msg('D', Buffer.concat(parts));
}

/** CopyOutResponse, text format, no columns. */
export const copyOut = (): Buffer => msg('H', Buffer.from([0, 0, 0]));
export const copyData = (payload: Buffer): Buffer => msg('d', payload);
export const copyDone = (): Buffer => msg('c');
export const commandComplete = (tag: string): Buffer => msg('C', Buffer.from(tag + '\0'));
export const readyForQuery = (): Buffer => msg('Z', Buffer.from('I'));

export function noticeBody(fields: { severity: string; code: string; message: string; detail?: string }): Buffer {
  const f: [string, string][] = [['S', fields.severity], ['V', fields.severity], ['C', fields.code], ['M', fields.message]];
  if (fields.detail) f.push(['D', fields.detail]);
  return Buffer.concat([...f.map(([k, v]) => Buffer.from(k + v + '\0')), Buffer.from([0])]);
}
export const notice = (f: Parameters<typeof noticeBody>[0]): Buffer => msg('N', noticeBody(f));
export const errorResponse = (f: Parameters<typeof noticeBody>[0]): Buffer => msg('E', noticeBody(f));

/** 15+ CopyData sub-messages. */
export const newArchive = (name: string, location: string): Buffer => copyData(Buffer.from(`n${name}\0${location}\0`));
export const archiveBytes = (data: Buffer): Buffer => copyData(Buffer.concat([Buffer.from('d'), data]));
export const manifestFollows = (): Buffer => copyData(Buffer.from('m'));
export function progressMessage(done: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0x70;
  b.writeBigInt64BE(BigInt(done), 1);
  return copyData(b);
}

const MTIME = new Date('2024-05-06T07:08:09Z');

/** A tar stream of the given files (and directories: names ending in '/'), end marker included. */
export function tarOf(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    if (name.endsWith('/')) {
      parts.push(encodeHeader({ name: name.slice(0, -1), type: '5', size: 0, mode: 0o700, mtime: MTIME }));
      continue;
    }
    const data = Buffer.from(text);
    parts.push(encodeHeader({ name, type: '0', size: data.length, mode: 0o600, mtime: MTIME }), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
