/**
 * BaseBackupDecoder (src/codec/protocol/base-backup-decoder.ts): scripted
 * BASE_BACKUP replies, framed as the server frames them, fed through
 * BackendParser + dispatchMessage whole and split at every byte offset (as
 * pg-protocol tests its parser), must give the same member events each time;
 * both the 15+ and the 13/14 form; malformed sequences are ProtocolErrors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendParser, type ServerNotice } from '../../../../src/codec/protocol/backend-parser';
import { dispatchMessage } from '../../../../src/codec/protocol/command-messages';
import { BaseBackupDecoder, type StartFacts } from '../../../../src/codec/protocol/base-backup-decoder';
import { ChecksumError, ProtocolError, ServerError, TarFormatError } from '../../../../src/errors';
import type { BackupEvent } from '../../../../src/events';
import * as m from '../../../support/backend-messages';

const FACTS15: StartFacts = {
  serverVersion: 170002,
  systemIdentifier: '7350000000000000001',
  walSegmentSize: 16 * 1024 * 1024,
  blockSize: 8192,
  segmentBlocks: 131072,
  dataChecksums: true,
  label: 'test',
};
const FACTS14: StartFacts = { ...FACTS15, serverVersion: 140011 };

const BASE = m.tarOf({ 'PG_VERSION': '17\n', 'global/': '', 'global/pg_control': 'x'.repeat(700) });
const TS = m.tarOf({ 'PG_17_202406281/': '', 'PG_17_202406281/5/16390': 'y'.repeat(1000) });
const MANIFEST = Buffer.from(`{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [${'\n'.padEnd(400, ' ')}],\n"WAL-Ranges": [] }\n`);

const startRows = (): Buffer[] => [
  m.rowDescription(['recptr', 'tli']),
  m.dataRow(['0/2000028', '1']),
  m.commandComplete('SELECT'),
  m.rowDescription(['spcoid', 'spclocation', 'size']),
  m.dataRow(['16385', '/srv/ts', '2']),
  m.dataRow([null, null, '30']),
  m.commandComplete('SELECT'),
];
const endRows = (): Buffer[] => [m.rowDescription(['recptr', 'tli']), m.dataRow(['0/2000100', '1']), m.commandComplete('SELECT'), m.commandComplete('BASE_BACKUP')];

/** 15+: the archives cut into CopyData pieces of `piece` bytes. */
function reply15(piece = 300): Buffer[] {
  const cut = (b: Buffer) => {
    const out: Buffer[] = [];
    for (let i = 0; i < b.length; i += piece) out.push(m.archiveBytes(b.subarray(i, i + piece)));
    return out;
  };
  return [
    ...startRows(),
    m.copyOut(),
    m.newArchive('16385.tar', '/srv/ts'),
    ...cut(TS),
    m.progressMessage(TS.length),
    m.notice({ severity: 'WARNING', code: 'XX000', message: 'a warning between archives' }),
    m.newArchive('base.tar', ''),
    ...cut(BASE),
    m.manifestFollows(),
    ...cut(MANIFEST),
    m.copyDone(),
    ...endRows(),
  ];
}

/** 13/14: one CopyOut per tablespace row, bare tar bytes; then the manifest's. */
function reply14(): Buffer[] {
  const cut = (b: Buffer) => [m.copyData(b.subarray(0, 200)), m.copyData(b.subarray(200))];
  return [
    ...startRows(),
    m.copyOut(), ...cut(TS), m.copyDone(),
    m.copyOut(), ...cut(BASE), m.copyDone(),
    m.copyOut(), ...cut(MANIFEST), m.copyDone(),
    ...endRows(),
  ];
}

interface Run {
  events: BackupEvent[];
  positions: string[];
  error: Error | null;
  serverErrors: ServerNotice[];
  end: { lsn: string; tli: number } | null;
}

/**
 * Feeds `wire` in the given pieces; a thrown error ends the run as the connection would.
 * `parts`: split CopyData comes to copyDataPart in pieces, as the connection hands it out.
 */
function run(wire: Buffer, facts: StartFacts, cuts: number[] = [], parts = false, compressed = false, noData = false, poison = false): Run {
  const r: Run = { events: [], positions: [], error: null, serverErrors: [], end: null };
  // poison: each piece of the wire is overwritten once the parser returns (read memory reused, as a slab is
  // once its bytes are given back); what an event keeps, its consumer keeps (retained), here a copy.
  const kept = (ev: BackupEvent): BackupEvent => (!poison ? ev : ev.type === 'data' ? { ...ev, chunk: Buffer.from(ev.chunk) } : ev.type === 'manifest' ? { ...ev, data: Buffer.from(ev.data) } : ev);
  const dec = new BaseBackupDecoder({
    start: facts,
    emit: (ev) => r.events.push(kept(ev as BackupEvent)),
    compressed,
    noData,
    onStart: (lsn, tli) => r.positions.push(`start ${lsn} ${tli}`),
    onEnd: (lsn, tli) => r.positions.push(`end ${lsn} ${tli}`),
  });
  let ready = false;
  const parser = new BackendParser((code, body) =>
    dispatchMessage(code, body, {
      rowDescription: (c) => dec.rowDescription(),
      dataRow: (v) => dec.dataRow(v),
      copyStart: (k) => dec.copyStart(k),
      copyData: (p) => dec.copyData(p),
      copyDone: () => dec.copyDone(),
      commandComplete: () => dec.commandComplete(),
      notice: (n) => dec.notice(n),
      error: (n) => r.serverErrors.push(n),
      ready: () => (ready = true),
    }),
    parts ? { wantParts: () => true, part: (p, first, last) => dec.copyDataPart(p, first, last) } : undefined,
  );
  try {
    let at = 0;
    for (const c of [...cuts, wire.length]) {
      const piece = poison ? Buffer.from(wire.subarray(at, c)) : wire.subarray(at, c);
      parser.write(piece);
      if (poison) piece.fill(0xee);
      at = c;
    }
    if (r.serverErrors.length) throw dec.mapError(new ServerError(r.serverErrors[0].message, r.serverErrors[0].sqlstate));
    if (ready) r.end = dec.finish();
  } catch (err) {
    r.error = err as Error;
  }
  return r;
}

/** Events with data joined per entry and manifest pieces joined, so that runs split differently compare equal. */
function shape(events: BackupEvent[]): unknown[] {
  const out: unknown[] = [];
  for (const ev of events) {
    const last = out[out.length - 1] as { type: string; data?: string } | undefined;
    if (ev.type === 'data') {
      if (last?.type === 'data') last.data += ev.chunk.toString('latin1');
      else out.push({ type: 'data', data: ev.chunk.toString('latin1') });
    } else if (ev.type === 'manifest') {
      if (last?.type === 'manifest') last.data += ev.data.toString('latin1');
      else out.push({ type: 'manifest', data: ev.data.toString('latin1') });
    } else out.push(ev.type === 'entry' ? { ...ev, mtime: ev.mtime.getTime() } : ev);
  }
  return out;
}

const withReady = (parts: Buffer[]) => Buffer.concat([...parts, m.readyForQuery()]);

function expectWhole(r: Run, legacy: boolean): void {
  assert.equal(r.error, null, String(r.error));
  assert.deepEqual(r.positions, ['start 0/2000028 1', 'end 0/2000100 1']);
  assert.deepEqual(r.end, { lsn: '0/2000100', tli: 1 });
  const types = shape(r.events).map((e) => {
    const ev = e as { type: string; path?: string; name?: string };
    return ev.type === 'entry' ? `entry ${ev.path}` : ev.type === 'archive' ? `archive ${ev.name}` : ev.type;
  });
  const ts = ['archive 16385', 'entry PG_17_202406281', 'entry-end', 'entry PG_17_202406281/5/16390', 'data', 'entry-end'];
  const base = ['archive base', 'entry PG_VERSION', 'data', 'entry-end', 'entry global', 'entry-end', 'entry global/pg_control', 'data', 'entry-end', 'archive-end'];
    // 15+: an archive ends when the next one starts (what came between is reported inside it).
  assert.deepEqual(types, ['start', ...ts, ...(legacy ? [] : ['progress', 'warning']), 'archive-end', ...base, 'manifest']);
  const start = r.events[0] as Extract<BackupEvent, { type: 'start' }>;
  assert.equal(start.startLsn, '0/2000028');
  assert.equal(start.totalBytes, 32 * 1024);
  assert.deepEqual(start.tablespaces, [
    { oid: '16385', location: '/srv/ts', size: 2048 },
    { oid: null, location: '', size: 30 * 1024 },
  ]);
  const manifest = r.events.filter((e) => e.type === 'manifest').map((e) => (e as { data: Buffer }).data);
  assert.ok(manifest.length > 1, 'the manifest comes in the pieces the server sent');
  assert.deepEqual(Buffer.concat(manifest), MANIFEST);
}

for (const [form, facts, reply] of [
  ['15+', FACTS15, reply15],
  ['13/14', FACTS14, reply14],
] as const) {
  test(`${form} form: whole and split at every byte offset, the same events`, () => {
    const wire = withReady(reply());
    const whole = run(wire, facts);
    expectWhole(whole, form === '13/14');
    const want = shape(whole.events);
    for (let i = 1; i < wire.length; i++) {
      for (const parts of [false, true]) {
        const r = run(wire, facts, [i], parts);
        assert.equal(r.error, null, `split at ${i}${parts ? ' in parts' : ''}: ${r.error}`);
        assert.deepEqual(shape(r.events), want, `split at ${i}${parts ? ' in parts' : ''}`);
        assert.deepEqual(r.end, whole.end);
      }
    }
  });
}

test('15+ form in parts: the small messages a read cuts (new archive, progress, manifest) are joined from copies, not from read memory reused since', () => {
  const wire = withReady(reply15());
  const want = shape(run(wire, FACTS15).events);
  for (let i = 1; i < wire.length; i += 7) {
    const r = run(wire, FACTS15, [i, i + 3, i + 11], true, false, false, true);
    assert.equal(r.error, null, `cut at ${i}: ${r.error}`);
    assert.deepEqual(shape(r.events), want, `cut at ${i}`);
  }
});

test('15+ form byte by byte, and with data in 1-byte CopyData pieces', () => {
  const wire = withReady(reply15());
  const want = shape(run(wire, FACTS15).events);
  const r = run(wire, FACTS15, Array.from({ length: wire.length - 1 }, (_, i) => i + 1));
  assert.deepEqual(shape(r.events), want);
  const tiny = run(withReady(reply15(1)), FACTS15);
  assert.equal(tiny.error, null);
  assert.deepEqual(shape(tiny.events), want);
});

test('checksum failures: warnings collected, XX001 becomes a ChecksumError listing up to 10', () => {
  const warnings = Array.from({ length: 12 }, (_, i) =>
    m.notice({ severity: 'WARNING', code: 'XX001', message: `checksum verification failed in file "./base/5/1${i}", block 0: calculated 1 but expected 2` }),
  );
  const parts = reply15();
  const wire = Buffer.concat([
    ...parts.slice(0, -4),
    ...warnings,
    m.notice({ severity: 'WARNING', code: 'XX001', message: '12 total checksum verification failures' }),
    m.errorResponse({ severity: 'ERROR', code: 'XX001', message: 'checksum verification failure during base backup' }),
    m.readyForQuery(),
  ]);
  const r = run(wire, FACTS15);
  assert.ok(r.error instanceof ChecksumError, String(r.error));
  assert.match(r.error.message, /^checksum verification failure during base backup: checksum verification failed in file "\.\/base\/5\/10"/);
  assert.equal(r.error.message.match(/failed in file/g)?.length, 10);
  assert.match(r.error.message, /; and 2 more$/);
  assert.equal(r.events.filter((e) => e.type === 'warning' && e.code === 'checksum').length, 13);
});

test('another server error passes unchanged', () => {
  const dec = new BaseBackupDecoder({ start: FACTS15, emit: () => {} });
  const err = new ServerError('could not stat file', '58P01');
  assert.equal(dec.mapError(err), err);
});

test('compressed (COMPRESSION zstd): <name>.tar.zst archives, their bytes handed on unparsed as archive-bytes', () => {
  const Z = Buffer.from('not parsed here');
  const wire = withReady([
    ...s, m.copyOut(),
    m.newArchive('16385.tar.zst', '/srv/ts'), m.archiveBytes(Z.subarray(0, 4)), m.archiveBytes(Z.subarray(4)),
    m.newArchive('base.tar.zst', ''), m.archiveBytes(Z),
    m.manifestFollows(), m.archiveBytes(MANIFEST), m.copyDone(), ...e,
  ]);
  const r = run(wire, FACTS15, [], false, true);
  assert.equal(r.error, null);
  const types = r.events.map((ev) => (ev.type === 'archive' ? `archive ${ev.name} ${ev.kind}` : ev.type));
  assert.deepEqual(types, ['start', 'archive 16385 tablespace', 'archive-bytes', 'archive-bytes', 'archive-end', 'archive base base', 'archive-bytes', 'archive-end', 'manifest']);
  const bytes = r.events.filter((ev) => (ev.type as string) === 'archive-bytes').map((ev) => (ev as unknown as { data: Buffer }).data.toString());
  assert.deepEqual(bytes, ['not ', 'parsed here', 'not parsed here']);
});

test('compressed: an uncompressed name, or a compressed archive without a byte, is a protocol error', () => {
  const plainName = run(withReady([...s, m.copyOut(), m.newArchive('base.tar', ''), m.archiveBytes(BASE), m.copyDone(), ...e]), FACTS15, [], false, true);
  assert.match(String(plainName.error), /unexpected archive "base\.tar" from server \(expected base\.tar\.zst or <oid>\.tar\.zst\)/);
  const empty = run(withReady([...s, m.copyOut(), m.newArchive('base.tar.zst', ''), m.manifestFollows(), m.archiveBytes(MANIFEST), m.copyDone(), ...e]), FACTS15, [], false, true);
  assert.ok(empty.error instanceof ProtocolError);
  assert.match(empty.error.message, /server sent no bytes for compressed archive "base\.tar\.zst"/);
});

test('noData (TARGET server|blackhole): archives named, progress, manifest announced, no bytes; a byte is a protocol error', () => {
  const wire = withReady([...s, m.copyOut(), m.newArchive('16385.tar', '/srv/ts'), m.progressMessage(2048), m.newArchive('base.tar', ''), m.progressMessage(4096), m.manifestFollows(), m.copyDone(), ...e]);
  const r = run(wire, FACTS15, [], false, false, true);
  assert.equal(r.error, null);
  assert.deepEqual(
    r.events.map((ev) => (ev.type === 'archive' ? `archive ${ev.name}` : ev.type === 'progress' ? `progress ${ev.done}` : ev.type)),
    ['start', 'archive 16385', 'progress 2048', 'archive-end', 'archive base', 'progress 4096', 'archive-end'],
  );
  assert.ok(r.end, 'the end position');
  const withBytes = run(withReady([...s, m.copyOut(), m.newArchive('base.tar', ''), m.archiveBytes(BASE), m.copyDone(), ...e]), FACTS15, [], false, false, true);
  assert.match(String(withBytes.error), /server sent backup data although the backup has a server-side target/);
});

/** A reply edited into a malformed one: the run must end in a ProtocolError matching `re`. */
function malformed(name: string, facts: StartFacts, parts: Buffer[], re: RegExp, kind: new (...a: never[]) => Error = ProtocolError): void {
  test(`malformed: ${name}`, () => {
    const wire = withReady(parts);
    for (const cuts of [[], [Math.floor(wire.length / 2)]]) {
      const r = run(wire, facts, cuts);
      assert.ok(r.error instanceof kind, `${name}: ${r.error}`);
      assert.match(r.error.message, re);
    }
  });
}

const s = startRows();
const e = endRows();
const tsArchive = [m.newArchive('16385.tar', '/srv/ts'), m.archiveBytes(TS)];
malformed('data before any archive (15+)', FACTS15, [...s, m.copyOut(), m.archiveBytes(TS), m.copyDone(), ...e], /archive data before any archive started/);
malformed('archive after the manifest', FACTS15, [...s, m.copyOut(), ...tsArchive, m.manifestFollows(), m.archiveBytes(MANIFEST), m.newArchive('base.tar', ''), m.copyDone(), ...e], /new archive after the manifest/);
malformed('a second manifest', FACTS15, [...s, m.copyOut(), ...tsArchive, m.manifestFollows(), m.manifestFollows(), m.copyDone(), ...e], /a second manifest/);
malformed('a second start row', FACTS15, [s[0], s[1], m.dataRow(['0/3000000', '1']), ...s.slice(2)], /a second start position row/);
malformed('a second end row', FACTS15, [...s, m.copyOut(), ...tsArchive, m.copyDone(), e[0], e[1], m.dataRow(['0/4000000', '1']), ...e.slice(2)], /a second end position row/);
malformed('compressed archive name', FACTS15, [...s, m.copyOut(), m.newArchive('base.tar.gz', ''), m.copyDone(), ...e], /unexpected archive "base\.tar\.gz" from server \(expected base\.tar or <oid>\.tar\)/);
malformed('archive name that is no OID', FACTS15, [...s, m.copyOut(), m.newArchive('../x.tar', ''), m.copyDone(), ...e], /unexpected archive "\.\.\/x\.tar"/);
malformed('unknown sub-message', FACTS15, [...s, m.copyOut(), m.copyData(Buffer.from('zz')), m.copyDone(), ...e], /unknown CopyData message type 0x7a/);
malformed('copy data outside a copy', FACTS15, [...s, m.archiveBytes(TS), ...e], /copy data outside a copy response/);
malformed('a data row during the copy (15+)', FACTS15, [...s, m.copyOut(), ...tsArchive, m.dataRow(['x']), m.copyDone(), ...e], /unexpected data row/);
malformed('a second copy response (15+)', FACTS15, [...s, m.copyOut(), ...tsArchive, m.copyDone(), m.copyOut(), m.copyDone(), ...e], /unexpected copy response/);
malformed('no end position', FACTS15, [...s, m.copyOut(), ...tsArchive, m.copyDone(), m.commandComplete('BASE_BACKUP')], /without reporting the end position/);
malformed('a truncated archive ends the copy', FACTS15, [...s, m.copyOut(), m.newArchive('16385.tar', '/srv/ts'), m.archiveBytes(TS.subarray(0, 700)), m.copyDone(), ...e], /truncated tar archive "16385\.tar"/, TarFormatError);
malformed('13/14: a copy after the manifest', FACTS14, [...s, m.copyOut(), m.copyData(TS), m.copyDone(), m.copyOut(), m.copyData(BASE), m.copyDone(), m.copyOut(), m.copyData(MANIFEST), m.copyDone(), m.copyOut(), m.copyDone(), ...e], /a copy response after the manifest/);
malformed('13/14: a copy-both response', FACTS14, [...s, m.msg('W', Buffer.from([0, 0, 0])), ...e], /unexpected copy-both response/);
malformed('a row description inside the copy', FACTS15, [...s, m.copyOut(), ...tsArchive, m.rowDescription(['x']), m.copyDone(), ...e], /unexpected row description during BASE_BACKUP \(copy\)/);
malformed('the tablespace header before the start row', FACTS15, [s[0], s[3], ...s.slice(4)], /unexpected row description during BASE_BACKUP \(start-row\)/);
