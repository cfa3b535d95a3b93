/**
 * ReplicationConnection (src/net/replication-connection.ts and the files it
 * is made of) against the scripted fake server (test/support/fake-server.ts):
 * commands and their errors, the watchdog on silence (and silence allowed),
 * CancelRequest on abort, a dropped connection, a server that says goodbye,
 * a connect that never completes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationConnection } from '../../../src/net/replication-connection';
import { clientConfig } from '../../../src/net/conninfo';
import { ConnectionError, ServerError } from '../../../src/errors';
import { fakeServer, FAKE_SYSTEM_ID, type FakeServer } from '../../support/fake-server';

const connect = (srv: FakeServer, timeoutMs = 0, signal?: AbortSignal) =>
  ReplicationConnection.connect(clientConfig({ conninfo: srv.conninfo }, true), { timeoutMs, signal });

async function withServer(script: Parameters<typeof fakeServer>[0], body: (srv: FakeServer) => Promise<void>): Promise<void> {
  const srv = await fakeServer(script);
  try {
    await body(srv);
  } finally {
    await srv.close();
  }
}

test('commands: rows, SHOW, a server error with its SQLSTATE, and the session goes on', () =>
  withServer(undefined, async (srv) => {
    const conn = await connect(srv);
    assert.equal(typeof conn.backendPid, 'number');
    const id = await conn.query('IDENTIFY_SYSTEM');
    assert.deepEqual(id.columns, ['systemid', 'timeline', 'xlogpos', 'dbname']);
    assert.equal(id.rows[0][0], FAKE_SYSTEM_ID);
    assert.equal(await conn.show('block_size'), '8192');
    const err = await conn.run('NONSENSE').then(() => null, (e) => e);
    assert.ok(err instanceof ServerError, String(err));
    assert.equal(err.sqlstate, '42601');
    assert.match(err.message, /syntax error at or near "NONSENSE"/);
    assert.equal(await conn.show('data_checksums'), 'on', 'the session survives an ERROR');
    await conn.close();
    assert.ok(conn.isClosed);
  }));

test('watchdog: a server silent while data is due fails the command within the limit', () =>
  withServer((sql) => sql === 'BASE_BACKUP' /* and say nothing */, async (srv) => {
    const conn = await connect(srv, 200);
    const t0 = Date.now();
    const err = await conn.run('BASE_BACKUP').then(() => null, (e) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof ConnectionError, String(err));
    assert.match(err.message, /^no response from server at "127\.0\.0\.1:\d+" for 0 s \(limit 0\.2 s, --timeout\)/);
    assert.ok(took >= 200 && took < 2000, `gave up after ${took} ms`);
    assert.ok(conn.isClosed);
  }));

test('watchdog: silence allowed (a checkpoint) and time paused do not count', () =>
  withServer(
    (sql, s) => {
      if (sql !== 'SLOW') return false;
      setTimeout(() => s.rows(['x'], [['done']]), 600);
      return true;
    },
    async (srv) => {
      const conn = await connect(srv, 200);
      conn.allowSilence(true);
      const r = await conn.query('SLOW');
      assert.deepEqual(r.rows, [['done']]);
      conn.allowSilence(false);
      conn.pause();
      const paused = conn.query('IDENTIFY_SYSTEM');
      await new Promise((r) => setTimeout(r, 500));
      conn.resume();
      assert.equal((await paused).rows[0][0], FAKE_SYSTEM_ID);
      await conn.close();
    },
  ));

test('abort mid-command sends a CancelRequest with the session\'s key, then drops the connection', () =>
  withServer((sql) => sql === 'BASE_BACKUP', async (srv) => {
    const conn = await connect(srv);
    const running = conn.run('BASE_BACKUP').then(() => null, (e) => e);
    await new Promise((r) => setTimeout(r, 50));
    const cancel = srv.nextCancel();
    await conn.abort(new ConnectionError('given up'));
    const got = await cancel;
    assert.equal(got.pid, conn.backendPid);
    assert.equal(got.secret, 0x1234 + got.pid);
    assert.match(String(await running), /given up/);
    // No command running: nothing to cancel.
    const idle = await connect(srv);
    await idle.abort();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(srv.cancels.length, 1);
  }));

test('a connection reset mid-command is a clear ConnectionError', () =>
  withServer(
    (sql, s) => {
      if (sql !== 'BASE_BACKUP') return false;
      s.send(Buffer.from('H\0\0\0\x07\0\0\0', 'latin1'));
      setTimeout(() => s.drop(), 50);
      return true;
    },
    async (srv) => {
      const conn = await connect(srv, 5000);
      const err = await conn.run('BASE_BACKUP', { copyStart: () => {} }).then(() => null, (e) => e);
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /^connection to server at "127\.0\.0\.1:\d+" lost: /);
      assert.doesNotMatch(err.message, /undefined/);
    },
  ));

test('a server that ends the session (FATAL 57P01) is named in the error', () =>
  withServer(
    (sql, s) => {
      if (sql !== 'BASE_BACKUP') return false;
      s.error('57P01', 'terminating connection due to administrator command', 'FATAL');
      setTimeout(() => s.socket.end(), 20);
      return true;
    },
    async (srv) => {
      const conn = await connect(srv);
      const err = await conn.run('BASE_BACKUP').then(() => null, (e) => e);
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /lost: terminating connection due to administrator command$/);
    },
  ));

test('connecting: a server that never answers the startup times out; an abort gives up at once', async () => {
  const srv = await fakeServer();
  srv.silentStartup = true;
  try {
    const err = await connect(srv, 300).then(() => null, (e) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.match(err.message, /connection to server at "127\.0\.0\.1:\d+" failed: timeout expired after 0\.3 s/);
    const ac = new AbortController();
    const t0 = Date.now();
    const pending = connect(srv, 0, ac.signal);
    setTimeout(() => ac.abort(new Error('stop')), 50);
    await assert.rejects(pending, /stop/);
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await srv.close();
  }
});
