/**
 * The startup packet of a replication connection, without client_encoding.
 *
 * pg-protocol always adds `client_encoding=UTF8`. A physical walsender is
 * connected to no database, so its messages are in SQL_ASCII, and with a
 * UTF8 client it must convert each one — a WARNING naming a file whose name
 * is not UTF-8 then turns into "invalid byte sequence for encoding UTF8" and
 * the backup fails. pg_basebackup (libpq) sends no client_encoding, so the
 * server passes its bytes through; so do we. (Pure.)
 */
export function startupPacket(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 3, 0, 0])]; // protocol 3.0
  for (const [key, value] of Object.entries(params)) {
    if (key === 'client_encoding') continue;
    parts.push(Buffer.from(`${key}\0${value}\0`, 'utf8'));
  }
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}
