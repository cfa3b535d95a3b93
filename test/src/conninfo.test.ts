import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientConfig, knownPassword, parseKeywordValue, parsePassfileLine } from '../../src/conninfo';
import { parseMaxRate, parseTablespaceMapping } from '../../src/commands/options';
import { formatLsn, parseLsn, walFileName } from '../../src/lsn';
import { AuthError, UsageError, ioError, systemReason } from '../../src/errors';
import { LIMITS } from '../../src/io/read-limited';
import { plant } from '../support/hostile-files';

test('keyword/value conninfo with quoting and escapes', () => {
  assert.deepEqual(parseKeywordValue(`host=/tmp port = 5433 password='a b\\'c' user=x\\ y`), {
    host: '/tmp',
    port: '5433',
    password: "a b'c",
    user: 'x y',
  });
  assert.throws(() => parseKeywordValue('host'), UsageError);
  assert.throws(() => parseKeywordValue("password='open"), /unterminated/);
});

test('clientConfig merges conninfo with -h/-p/-U and asks for replication', () => {
  const c = clientConfig({ conninfo: 'host=db port=6000 user=a dbname=x', port: 7000, user: 'b' }) as Record<string, unknown>;
  assert.equal(c.host, 'db');
  assert.equal(c.port, 7000);
  assert.equal(c.user, 'b');
  assert.equal(c.database, 'x');
  assert.equal(c.replication, 'true');
  const u = clientConfig({ conninfo: 'postgresql://u:secret@h:5555/d?sslmode=disable' }, 'database') as Record<string, unknown>;
  assert.equal(u.host, 'h');
  assert.equal(u.port, 5555);
  assert.equal(u.password, 'secret');
  assert.equal(u.replication, 'database');
  assert.throws(() => clientConfig({ port: 'abc' }), /invalid port number "abc"/);
  assert.throws(() => clientConfig({ conninfo: 'sslmode=sometimes' }), /invalid sslmode/);
});

test('max rate: kB/s with k and M suffixes, 32 kB/s to 1 GB/s', () => {
  assert.equal(parseMaxRate('100'), 100);
  assert.equal(parseMaxRate('100k'), 100);
  assert.equal(parseMaxRate('2M'), 2048);
  assert.throws(() => parseMaxRate('10'), /out of range/);
  assert.throws(() => parseMaxRate('2G'), /invalid transfer rate/);
  assert.throws(() => parseMaxRate('0'), /greater than zero/);
});

test('tablespace mapping OLD=NEW, escaped =, absolute paths', () => {
  assert.deepEqual(parseTablespaceMapping('/a=/b', {}), { '/a': '/b' });
  assert.deepEqual(parseTablespaceMapping('/a\\=x/=/b/', {}), { '/a=x': '/b' });
  assert.throws(() => parseTablespaceMapping('/a', {}), /must be "OLDDIR=NEWDIR"/);
  assert.throws(() => parseTablespaceMapping('a=/b', {}), /old directory is not an absolute path/);
  assert.throws(() => parseTablespaceMapping('/a=b', {}), /new directory is not an absolute path/);
});

test('LSN text and WAL file names', () => {
  assert.equal(parseLsn('16/B374D848'), 0x16b374d848n);
  assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
  assert.equal(formatLsn(0n), '0/0');
  assert.throws(() => parseLsn('16B374D848'));
  assert.equal(walFileName(1, 0x0a000028n, 16 * 1024 * 1024), '00000001000000000000000A');
  assert.equal(walFileName(2, 0x1_0000_0000n, 16 * 1024 * 1024), '000000020000000100000000');
});

test('password file lines: five fields, backslash escapes, a colon in the password kept', () => {
  assert.deepEqual(parsePassfileLine('db:5432:*:bob:s3cr:t'), ['db', '5432', '*', 'bob', 's3cr:t']);
  assert.deepEqual(parsePassfileLine('h\\:1:5432:x:u\\\\v:p\\\\w'), ['h:1', '5432', 'x', 'u\\v', 'p\\w']);
  assert.equal(parsePassfileLine('# comment'), null);
  assert.equal(parsePassfileLine('   '), null);
  assert.equal(parsePassfileLine('only:three:fields'), null);
});

test('password lookup: first matching line wins, `replication` for a physical connection, 0600 required', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-'));
  const file = join(dir, 'pgpass');
  const env = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
  try {
    delete process.env.PGPASSWORD;
    process.env.PGPASSFILE = file;
    writeFileSync(file, ['otherhost:*:*:*:no', '127.0.0.1:6000:postgres:bob:for-sql', '127.0.0.1:6000:replication:bob:for-replication', '*:*:*:*:fallback', ''].join('\n'), { mode: 0o600 });
    const opts = { host: '127.0.0.1', port: 6000, user: 'bob' };
    assert.equal(knownPassword(opts), 'for-replication');
    assert.equal(knownPassword(opts, 'database'), 'fallback', 'replication=database uses the real database name (default: the user)');
    assert.equal(knownPassword({ ...opts, conninfo: 'dbname=postgres' }), 'for-sql');
    assert.equal(knownPassword({ ...opts, conninfo: 'password=given' }), 'given', 'the conninfo wins');
    // pg gets a function: asked only when the server wants a password.
    const pw = clientConfig(opts).password;
    assert.equal(typeof pw, 'function');
    assert.equal(await (pw as () => Promise<string>)(), 'for-replication');

    chmodSync(file, 0o644);
    assert.equal(knownPassword(opts), undefined, 'a password file others can read is ignored, as libpq does');
    await assert.rejects((clientConfig(opts).password as () => Promise<string>)(), (err: Error) => {
      assert.ok(err instanceof AuthError);
      assert.match(err.message, /^no password supplied for user "bob" \(give password= in -d, PGPASSWORD or an entry in .*pgpass, ignored: it has group or world access \(chmod 0600\)\)$/);
      return true;
    });
    process.env.PGPASSWORD = 'from-env';
    assert.equal(clientConfig(opts).password, 'from-env');
  } finally {
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a password file that is a symlink, a FIFO or huge is not read, and the message says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-'));
  const real = join(dir, 'real');
  const file = join(dir, 'pgpass');
  const env = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
  const opts = { host: '127.0.0.1', port: 6000, user: 'bob' };
  const why = async (): Promise<string> => {
    let message = '';
    await assert.rejects((clientConfig(opts).password as () => Promise<string>)(), (err: Error) => ((message = err.message), err instanceof AuthError));
    return message;
  };
  try {
    delete process.env.PGPASSWORD;
    process.env.PGPASSFILE = file;
    writeFileSync(real, '*:*:*:*:secret-in-target\n', { mode: 0o600 });
    symlinkSync(real, file);
    assert.equal(knownPassword(opts), undefined, 'a link is not followed (it may lead anywhere)');
    const linked = await why();
    assert.match(linked, /ignored: password file ".*pgpass" is a symbolic link: refusing to follow it\)$/);
    assert.ok(!linked.includes('secret-in-target'));
    plant(file, 'fifo');
    assert.equal(knownPassword(opts), undefined);
    assert.match(await why(), /ignored: password file ".*pgpass" is a FIFO, not a regular file\)$/);
    plant(file, 'oversize', LIMITS.passfile.maxBytes);
    chmodSync(file, 0o600);
    assert.match(await why(), /ignored: password file ".*pgpass" is larger than 16777216 bytes/);
  } finally {
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('system errors read as the C library says them, without Node\'s code and syscall', () => {
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC' });
  assert.equal(systemReason(enospc), 'no space left on device');
  assert.equal(systemReason(Object.assign(new Error("EMFILE: too many open files, open '/x'"), { code: 'EMFILE' })), 'too many open files');
  assert.equal(systemReason(Object.assign(new Error("EXDEV: cross-device link not permitted, rename '/a' -> '/b'"), { code: 'EXDEV' })), 'cross-device link not permitted');
  assert.equal(systemReason(new Error('plain message')), 'plain message');
  assert.equal(ioError('could not write to file', '/t/base.tar', enospc).message, 'could not write to file "/t/base.tar": no space left on device');
});
