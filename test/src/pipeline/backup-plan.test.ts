import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { settleBackup, type BackupOptions } from '../../../src/pipeline/backup-plan';
import { settleRefresh, checkIncrementalFrom } from '../../../src/pipeline/refresh-plan';
import { UsageError } from '../../../src/errors';
import { parseCompressSpec } from '../../../src/codec/compression';

const connection = { host: '127.0.0.1', port: '5432', user: 'postgres' };

test('defaults are the CLI\'s: plain, spread, WAL streamed, manifest and checksums on, fsync, 60 s timeout in ms, no rate', () => {
  const p = settleBackup({ connection, target: '/tmp/x' });
  assert.equal(p.format, 'plain');
  assert.equal(p.sink, 'directory');
  assert.equal(p.chunkMap, true, 'a plain backup records its chunk map');
  assert.equal(p.checkpoint, 'spread');
  assert.equal(p.label, 'pgbb base backup');
  assert.equal(p.wal, 'stream');
  assert.equal(p.noSlot, false);
  assert.equal(p.manifest, true);
  assert.equal(p.verifyChecksums, true);
  assert.equal(p.sync, true);
  assert.equal(p.timeout, 60_000);
  assert.equal(p.maxRate, null);
  assert.deepEqual(p.compress, { method: 'none' });
  assert.equal(p.walSpool, null);
  assert.equal(p.clientConfig.host, '127.0.0.1');
  const s = settleBackup({ connection, target: '-' });
  assert.equal(s.format, 'tar');
  assert.equal(s.sink, 'stdout');
  assert.equal(s.chunkMap, false);
  assert.equal(settleBackup({ connection, target: '/tmp/x', format: 'tar' }).sink, 'tar-files');
});

test('zstd is settled once: level and workers filled in, so no later stage defaults them', () => {
  const p = settleBackup({ connection, target: '-', compress: { method: 'zstd', level: 5 } });
  assert.equal(p.compress.method, 'zstd');
  assert.equal((p.compress as { level: number }).level, 5);
  assert.equal(typeof (p.compress as { workers?: number }).workers, 'number');
});

test('every combination the sinks cannot take is refused up front with the message the CLI gives', () => {
  const bad: [Partial<BackupOptions>, RegExp][] = [
    [{ target: '-', format: 'plain' }, /^-D - \(stdout\) requires tar format \(-F tar\)$/],
    [{ format: 'tar', tablespaceMapping: { '/a': '/b' } }, /^-T\/--tablespace-mapping is only allowed with plain format$/],
    [{ target: '-', tablespaceMapping: { '/a': '/b' } }, /^-T\/--tablespace-mapping is only allowed with plain format$/],
    [{ compress: { method: 'zstd', level: 3 } }, /^--compress is only allowed with tar format or -D -$/],
    [{ format: 'tar', compress: { method: 'zstd', level: 25 } }, /^zstd level 25 is out of range \(1\.\.19\)$/],
    [{ walSpool: '/tmp' }, /^--wal-spool is only for -X stream to -D -/],
    [{ target: '-', wal: 'fetch', walSpool: '/tmp' }, /^--wal-spool is only for -X stream to -D -/],
    [{ wal: 'fetch', slot: 's1' }, /replication slots can only be used with WAL streaming/],
    [{ slot: 's1', noSlot: true }, /--no-slot cannot be used with a slot name/],
    [{ format: 'zip' as 'tar' }, /^invalid output format "zip"/],
    [{ timeout: -1 }, /^invalid timeout -1/],
    [{ maxRate: 10 }, /out of range \(must be between 32 kB\/s and 1 GB\/s\)/],
    [{ target: '' }, /^no target directory given$/],
    [{ connection: { port: 'abc' } }, /port/],
    [{ jobs: 0 }, /^invalid number of parallel jobs "0", must be between 1 and 64$/],
    [{ jobs: 65 }, /^invalid number of parallel jobs "65", must be between 1 and 64$/],
    [{ jobs: 2, wal: 'fetch' }, /^-j\/--jobs and --local-pgdata cannot fetch WAL \(-X fetch\): use -X stream$/],
    [{ localPgdata: '/srv/pg', wal: 'fetch' }, /^-j\/--jobs and --local-pgdata cannot fetch WAL/],
    [{ jobs: 4, slot: 's1', createSlot: true }, /^-C\/--create-slot is not supported with -j\/--jobs or --local-pgdata$/],
  ];
  for (const [o, message] of bad) {
    assert.throws(() => settleBackup({ connection, target: '/tmp/x', ...o }), (e: unknown) => e instanceof UsageError && message.test(e.message), JSON.stringify(o));
  }
});

test('--wal-spool is resolved once; refresh settles as a plain backup in place', () => {
  assert.equal(settleBackup({ connection, target: '-', walSpool: 'rel' }).walSpool, path.resolve('rel'));
  const r = settleRefresh({ connection, target: '/tmp/x', tablespaceMapping: { '/a': '/b' } });
  assert.equal(r.format, 'plain');
  assert.equal(r.incremental, 'auto');
  assert.equal(r.wal, 'stream');
  assert.throws(() => settleRefresh({ connection, target: '/tmp/x', incremental: 'sometimes' as 'off' }), /invalid incremental mode/);
  assert.throws(() => checkIncrementalFrom('/a', '/b', 'plain'), /-D must name the same directory as "\/a"/);
  assert.throws(() => checkIncrementalFrom('/a', '/a', 'tar'), /needs a plain backup/);
  assert.equal(checkIncrementalFrom('/a', '/a/', 'plain'), '/a/');
});

test('a library caller\'s checkpoint and compress are checked up front too (the CLI\'s parser never passes bad ones)', () => {
  assert.throws(() => settleBackup({ connection, target: '/tmp/x', checkpoint: 'slow' as 'fast' }), /^UsageError: invalid checkpoint "slow", must be "fast" or "spread"$/);
  assert.throws(
    () => settleBackup({ connection, target: '-', compress: 'zstd' as unknown as BackupOptions['compress'] }),
    /^UsageError: invalid compress "zstd": give \{ method: 'zstd', level\?, workers\? \} or \{ method: 'none' \}/,
  );
});

test('server-zstd: BASE_BACKUP compresses; plain is written as is, tar and -D - as client zstd at the same level; -j refused', () => {
  const server = parseCompressSpec('server-zstd:level=2');
  const plain = settleBackup({ connection, target: '/tmp/x', compress: server });
  assert.deepEqual([plain.serverCompress, plain.compress], [{ level: 2 }, { method: 'none' }]);
  const tar = settleBackup({ connection, target: '/tmp/x', format: 'tar', compress: server });
  assert.deepEqual([tar.serverCompress, tar.compress.method, (tar.compress as { level: number }).level], [{ level: 2 }, 'zstd', 2]);
  assert.equal(settleBackup({ connection, target: '-', compress: server }).compress.method, 'zstd');
  assert.equal(settleBackup({ connection, target: '/tmp/x', format: 'tar', compress: parseCompressSpec('zstd:2') }).serverCompress, null);
  assert.throws(() => settleBackup({ connection, target: '/tmp/x', compress: server, jobs: 2 }), /server-zstd is not supported with -j\/--jobs/);
});
