import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientConfig, parseKeywordValue, parsePassfileLine, type ConnectionOptions } from '../../../src/net/conninfo';
import { parseConninfo } from '../../../src/net/conninfo-parse';
import { tlsPlan } from '../../../src/net/tls-options';
import { parseMaxRate, parseTablespaceMapping } from '../../../src/commands/options';
import { formatLsn, parseLsn, walFileName } from '../../../src/codec/lsn';
import { AuthError, ProtocolError, UsageError, ioError, systemReason } from '../../../src/errors';
import { LIMITS } from '../../../src/io/read-limited';
import { plant } from '../../support/hostile-files';

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
  assert.throws(() => parseLsn('16B374D848'), (e: unknown) => e instanceof ProtocolError && /invalid LSN "16B374D848"/.test(e.message));
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

/** The password pg would be given for these options: a string, or what the lazy lookup finds (undefined when none). */
async function passwordFor(opts: ConnectionOptions, replication: true | 'database' = true): Promise<string | undefined> {
  const pw = clientConfig(opts, replication).password;
  return typeof pw === 'function' ? (pw as () => Promise<string>)().catch(() => undefined) : pw;
}

test('password lookup: first matching line wins, `replication` for a physical connection, 0600 required', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-'));
  const file = join(dir, 'pgpass');
  const env = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
  try {
    delete process.env.PGPASSWORD;
    process.env.PGPASSFILE = file;
    writeFileSync(file, ['otherhost:*:*:*:no', '127.0.0.1:6000:postgres:bob:for-sql', '127.0.0.1:6000:replication:bob:for-replication', '*:*:*:*:fallback', ''].join('\n'), { mode: 0o600 });
    const opts = { host: '127.0.0.1', port: 6000, user: 'bob' };
    assert.equal(await passwordFor(opts), 'for-replication');
    assert.equal(await passwordFor(opts, 'database'), 'fallback', 'replication=database uses the real database name (default: the user)');
    assert.equal(await passwordFor({ ...opts, conninfo: 'dbname=postgres' }), 'for-sql');
    assert.equal(await passwordFor({ ...opts, conninfo: 'password=given' }), 'given', 'the conninfo wins');
    // pg gets a function: asked only when the server wants a password.
    const pw = clientConfig(opts).password;
    assert.equal(typeof pw, 'function');
    assert.equal(await (pw as () => Promise<string>)(), 'for-replication');

    chmodSync(file, 0o644);
    assert.equal(await passwordFor(opts), undefined, 'a password file others can read is ignored, as libpq does');
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

test('a password file that is a FIFO or huge is not read (and never blocks), and the message says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-'));
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
    plant(file, 'fifo');
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

test('URIs as libpq reads them: percent escapes, an IPv6 host, a socket directory, query keywords, ssl=true', () => {
  assert.deepEqual(parseConninfo('postgresql://bob:p%40ss%3Aw@[::1]:6000/my%20db?sslmode=verify-full&application_name=x'), {
    user: 'bob', password: 'p@ss:w', host: '::1', port: '6000', dbname: 'my db', sslmode: 'verify-full', application_name: 'x',
  });
  assert.deepEqual(parseConninfo('postgres://%2Fvar%2Frun%2Fpostgresql/db'), { host: '/var/run/postgresql', dbname: 'db' });
  assert.deepEqual(parseConninfo('postgresql://'), {});
  assert.deepEqual(parseConninfo('postgresql://h?ssl=true'), { host: 'h', sslmode: 'require' });
  assert.deepEqual(parseConninfo('postgresql://u@h'), { user: 'u', host: 'h' });
  // Errors name a position or a keyword, never a value.
  for (const [uri, message] of [
    ['postgresql://u:Secret%4@h', /^invalid percent-encoded token at position 22 in URI$/],
    ['postgresql://u:Secret%00@h', /^invalid percent-encoded token at position 22 in URI$/],
    ['postgresql://h/d?Secret', /^invalid URI query parameter at position 18: must be key=value$/],
    ['postgresql://h/d?a=b=Secret', /^invalid URI query parameter at position 18: must be key=value$/],
    ['postgresql://[::1]x/d', /^unexpected character at position 19 in URI/],
  ] as const) {
    assert.throws(() => parseConninfo(uri), (err: Error) => err instanceof UsageError && message.test(err.message) && !err.message.includes('Secret'), uri);
  }
});

test('keywords: libpq\'s only; those pgbb cannot honour refused, not ignored', () => {
  assert.throws(() => parseConninfo('hots=x'), { message: 'invalid connection option "hots"' });
  assert.throws(() => parseConninfo('service=prod'), { message: 'connection option "service" is not supported by pgbb' });
  assert.throws(() => parseConninfo('channel_binding=require'), { message: 'connection option "channel_binding" with this value is not supported by pgbb' });
  assert.throws(() => parseConninfo('target_session_attrs=read-write'), /not supported by pgbb/);
  assert.deepEqual(parseConninfo('channel_binding=prefer keepalives=1 gssencmode=disable'), { channel_binding: 'prefer', keepalives: '1', gssencmode: 'disable' });
  assert.throws(() => parseConninfo('host=a password=x y'), (err: Error) => /^missing "=" after the word at position 19/.test(err.message));
});

test('TLS plans per sslmode, as libpq: prefer tries TLS then plain, allow the other way round; a socket never uses TLS', async () => {
  const home = await mkdtemp(join(tmpdir(), 'pgbb-tls-home-'));
  try {
    const kinds = (mode: string | undefined, host = 'db') => tlsPlan({ sslmode: mode }, host, home).attempts.map((a) => (a ? 'tls' : 'plain'));
    assert.deepEqual(kinds(undefined), ['tls', 'plain']);
    assert.deepEqual(kinds('prefer'), ['tls', 'plain']);
    assert.deepEqual(kinds('allow'), ['plain', 'tls']);
    assert.deepEqual(kinds('disable'), ['plain']);
    assert.deepEqual(kinds('require'), ['tls']);
    assert.deepEqual(kinds('require', '/var/run/postgresql'), ['plain']);
    const req = tlsPlan({ sslmode: 'require' }, 'db', home).attempts[0] as { rejectUnauthorized: boolean };
    assert.equal(req.rejectUnauthorized, false, 'require without a root certificate does not verify');
    assert.throws(() => tlsPlan({ sslmode: 'verify-ca' }, 'db', home), /root certificate file ".*root\.crt" does not exist/);
    assert.throws(() => tlsPlan({ sslmode: 'require', sslrootcert: 'system' }, 'db', home), /weak sslmode "require" may not be used with sslrootcert=system/);
    assert.equal(tlsPlan({ sslrootcert: 'system' }, 'db', home).mode, 'verify-full');
    assert.throws(() => tlsPlan({ ssl_min_protocol_version: 'SSLv3' }, 'db', home), /invalid ssl_min_protocol_version value "SSLv3"/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('clientConfig: PG* variables read here and checked, so pg never reads them itself', () => {
  const saved = { PGPORT: process.env.PGPORT, PGHOST: process.env.PGHOST, PGSSLMODE: process.env.PGSSLMODE };
  try {
    process.env.PGPORT = '6543';
    process.env.PGHOST = 'envhost';
    process.env.PGSSLMODE = 'disable';
    const c = clientConfig({}) as Record<string, unknown>;
    assert.equal(c.port, 6543);
    assert.equal(c.host, 'envhost');
    assert.equal(c.ssl, false);
    assert.equal((clientConfig({ conninfo: 'port=7000' }) as Record<string, unknown>).port, 7000, 'the conninfo wins over the environment');
    assert.equal((clientConfig({ conninfo: 'host=name hostaddr=10.0.0.1' }) as Record<string, unknown>).host, '10.0.0.1', 'hostaddr is where pg connects');
    process.env.PGPORT = 'abc';
    assert.throws(() => clientConfig({}), { message: 'invalid port number "abc" in PGPORT (1 to 65535)' });
    assert.equal((clientConfig({ port: 5433 }) as Record<string, unknown>).port, 5433, 'a PGPORT that -p overrides does not matter');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('password file: a link is followed as libpq follows it; a file far too large is ignored, and the message says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-link-'));
  const saved = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
  try {
    delete process.env.PGPASSWORD;
    const real = join(dir, 'real');
    writeFileSync(real, '*:*:*:*:linked\n', { mode: 0o600 });
    symlinkSync(real, join(dir, 'link'));
    process.env.PGPASSFILE = join(dir, 'link');
    assert.equal(await passwordFor({ user: 'bob' }), 'linked');
    // 1 GiB, sparse: never read whole.
    const huge = join(dir, 'huge');
    writeFileSync(huge, '', { mode: 0o600 });
    truncateSync(huge, 1024 ** 3);
    process.env.PGPASSFILE = huge;
    await assert.rejects((clientConfig({ user: 'bob' }).password as () => Promise<string>)(), /entry in .*huge, ignored: password file ".*huge" is larger than \d+ bytes, the most it can hold: refusing to read it\)$/);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
