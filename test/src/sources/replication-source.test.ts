/**
 * ReplicationSource (the thin BaseBackupReader, wrapped by StreamedWalSource)
 * against the scripted fake server: the member stream of a scripted
 * BASE_BACKUP; a checksum failure as ChecksumError; destroying mid-checkpoint
 * cancels on the server; with `wal: 'stream'` the WAL connection is prepared
 * (and may fail) before BASE_BACKUP is sent. Real servers: test/integration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationSource } from '../../../src/sources/replication-source';
import { ChecksumError } from '../../../src/errors';
import type { BackupEvent } from '../../../src/events';
import { fakeServer, type FakeServer, type QueryScript } from '../../support/fake-server';
import * as m from '../../support/backend-messages';

const BASE = m.tarOf({ PG_VERSION: '17\n', 'global/': '' });
const MANIFEST = Buffer.from('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": [] }\n');

function reply(extra: Buffer[] = [], error?: Buffer): Buffer[] {
  return [
    m.rowDescription(['recptr', 'tli']), m.dataRow(['0/2000028', '1']), m.commandComplete('SELECT'),
    m.rowDescription(['spcoid', 'spclocation', 'size']), m.dataRow([null, null, null]), m.commandComplete('SELECT'),
    m.copyOut(), m.newArchive('base.tar', ''), m.archiveBytes(BASE),
    m.manifestFollows(), m.archiveBytes(MANIFEST.subarray(0, 30)), m.archiveBytes(MANIFEST.subarray(30)),
    m.copyDone(), ...extra,
    ...(error ? [error] : [m.rowDescription(['recptr', 'tli']), m.dataRow(['0/2000100', '1']), m.commandComplete('SELECT'), m.commandComplete('BASE_BACKUP')]),
    m.readyForQuery(),
  ];
}

async function withServer(script: QueryScript, body: (srv: FakeServer) => Promise<void>): Promise<void> {
  const srv = await fakeServer(script);
  try {
    await body(srv);
  } finally {
    await srv.close();
  }
}

const collect = async (src: ReplicationSource) => {
  const out: BackupEvent[] = [];
  for await (const ev of src) out.push(ev);
  return out;
};

test('a scripted BASE_BACKUP: the member stream, the manifest in its pieces, end last', () =>
  withServer(
    (sql, s) => {
      if (!sql.startsWith('BASE_BACKUP')) return false;
      s.send(...reply());
      return true;
    },
    async (srv) => {
      const events = await collect(new ReplicationSource({ connection: { conninfo: srv.conninfo }, wal: 'fetch', label: 'fake' }));
      assert.deepEqual(
        events.map((e) => (e.type === 'entry' ? `entry ${e.path}` : e.type)),
        ['start', 'archive', 'entry PG_VERSION', 'data', 'entry-end', 'entry global', 'entry-end', 'archive-end', 'manifest', 'manifest', 'end'],
      );
      const start = events[0] as Extract<BackupEvent, { type: 'start' }>;
      assert.equal(start.serverVersion, 170002);
      assert.equal(start.label, 'fake');
      assert.equal(start.startLsn, '0/2000028');
      assert.ok(!('xlogpos' in start), 'only the start event\'s own fields');
      assert.deepEqual(events.at(-1), { type: 'end', endLsn: '0/2000100', timeline: 1 });
      assert.match(srv.queries.find((q) => q.startsWith('BASE_BACKUP'))!, /LABEL 'fake'.*WAL/);
    },
  ));

test('a checksum failure: warnings, then a ChecksumError naming the file', () =>
  withServer(
    (sql, s) => {
      if (!sql.startsWith('BASE_BACKUP')) return false;
      const warn = m.notice({ severity: 'WARNING', code: 'XX001', message: 'checksum verification failed in file "./base/5/16384", block 3: calculated 1 but expected 2' });
      s.send(...reply([warn], m.errorResponse({ severity: 'ERROR', code: 'XX001', message: 'checksum verification failure during base backup' })));
      return true;
    },
    async (srv) => {
      const src = new ReplicationSource({ connection: { conninfo: srv.conninfo }, wal: 'fetch' });
      const err = await collect(src).then(() => null, (e) => e);
      assert.ok(err instanceof ChecksumError, String(err));
      assert.match(err.message, /base backup: checksum verification failed in file "\.\/base\/5\/16384", block 3/);
    },
  ));

test('destroyed while the server checkpoints: a CancelRequest for the walsender, and the source closes', () =>
  withServer(
    (sql) => sql.startsWith('BASE_BACKUP') /* silent: a spread checkpoint */,
    async (srv) => {
      const src = new ReplicationSource({ connection: { conninfo: srv.conninfo }, wal: 'fetch', timeout: 200 });
      src.on('error', () => {});
      const cancel = srv.nextCancel();
      const waitForCommand = async () => {
        while (!srv.queries.some((q) => q.startsWith('BASE_BACKUP'))) await new Promise((r) => setTimeout(r, 10));
      };
      await waitForCommand();
      // Longer than the timeout: silence is allowed until the start position.
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(src.destroyed, false, 'the checkpoint\'s silence is not a dead server');
      src.destroy();
      const got = await cancel;
      assert.equal(typeof got.pid, 'number');
      await new Promise((r) => src.once('close', r));
    },
  ));

test('wal stream: the WAL connection is prepared before BASE_BACKUP; its failure means no BASE_BACKUP at all', () =>
  withServer(
    (sql, s) => {
      if (!sql.startsWith('CREATE_REPLICATION_SLOT')) return false;
      s.error('53400', 'all replication slots are in use');
      return true;
    },
    async (srv) => {
      const src = new ReplicationSource({ connection: { conninfo: srv.conninfo } }); // wal: 'stream' by default
      const err = await collect(src).then(() => null, (e) => e);
      assert.ok(err, 'the source failed');
      assert.match(String(err.message), /all replication slots are in use/);
      assert.ok(srv.queries.some((q) => q.startsWith('CREATE_REPLICATION_SLOT')));
      assert.ok(!srv.queries.some((q) => q.startsWith('BASE_BACKUP')), `queries: ${srv.queries.join('; ')}`);
    },
  ));
