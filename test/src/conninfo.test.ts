import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientConfig, parseKeywordValue } from '../../src/conninfo';
import { parseMaxRate, parseTablespaceMapping } from '../../src/commands/options';
import { formatLsn, parseLsn, walFileName } from '../../src/lsn';
import { UsageError } from '../../src/errors';

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
