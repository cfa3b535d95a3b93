import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  baseBackupCommand,
  decodeCopyData,
  legacyBaseBackupCommand,
  quoteLiteral,
  type BaseBackupOptions,
} from '../../../../src/codec/protocol/base-backup';
import { ProtocolError, UsageError } from '../../../../src/errors';

const defaults: BaseBackupOptions = {
  label: 'pgbb base backup',
  progress: false,
  checkpoint: 'spread',
  wal: true,
  wait: false,
  manifest: true,
  manifestChecksums: 'CRC32C',
  tablespaceMap: false,
  verifyChecksums: true,
};

test('15+ command: the option list pg_basebackup sends', () => {
  assert.equal(
    baseBackupCommand({ ...defaults, label: "it's", progress: true, checkpoint: 'fast', maxRate: 1024 }),
    "BASE_BACKUP ( LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAL, WAIT 0, MAX_RATE 1024, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C' )",
  );
  assert.equal(
    baseBackupCommand({ ...defaults, wal: false, wait: true, manifest: false, verifyChecksums: false, tablespaceMap: true }),
    "BASE_BACKUP ( LABEL 'pgbb base backup', CHECKPOINT 'spread', TABLESPACE_MAP, VERIFY_CHECKSUMS 0 )",
  );
});

test('13/14 command: keywords without parentheses', () => {
  assert.equal(
    legacyBaseBackupCommand({ ...defaults, checkpoint: 'fast', verifyChecksums: false }),
    "BASE_BACKUP LABEL 'pgbb base backup' FAST WAL NOWAIT NOVERIFY_CHECKSUMS MANIFEST 'yes' MANIFEST_CHECKSUMS 'CRC32C'",
  );
});

test('server compression: COMPRESSION and its detail on 15+, refused in the 13/14 form (which has no such option)', () => {
  assert.match(baseBackupCommand({ ...defaults, compression: { level: 1 } }), /, COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=1' \)$/);
  assert.match(baseBackupCommand({ ...defaults, compression: { level: 5, workers: 2 } }), /COMPRESSION_DETAIL 'level=5,workers=2'/);
  assert.throws(() => legacyBaseBackupCommand({ ...defaults, compression: { level: 1 } }), (e: unknown) => e instanceof UsageError && /needs PostgreSQL 15 or later/.test(e.message));
});

test('--target: TARGET and TARGET_DETAIL on 15+ (the directory quoted), refused in the 13/14 form in pg_basebackup\'s words', () => {
  assert.match(baseBackupCommand({ ...defaults, target: { kind: 'server', directory: "/srv/it's" } }), /, TARGET 'server', TARGET_DETAIL '\/srv\/it''s' \)$/);
  assert.match(baseBackupCommand({ ...defaults, target: { kind: 'blackhole' } }), /, TARGET 'blackhole' \)$/);
  assert.throws(() => legacyBaseBackupCommand({ ...defaults, target: { kind: 'blackhole' } }), (e: unknown) => e instanceof UsageError && /^backup targets are not supported by this server version/.test(e.message));
});

test('bad labels and rates are usage errors', () => {
  assert.throws(() => baseBackupCommand({ ...defaults, label: 'a\nb' }), UsageError);
  assert.throws(() => baseBackupCommand({ ...defaults, label: 'x'.repeat(1025) }), /longer than 1024/);
  assert.throws(() => baseBackupCommand({ ...defaults, maxRate: 31 }), /out of range/);
  assert.throws(() => quoteLiteral('a\0b'), UsageError);
});

test('CopyData sub-messages', () => {
  assert.deepEqual(decodeCopyData(Buffer.from('n16385.tar\0/srv/ts\0')), { kind: 'archive', name: '16385.tar', location: '/srv/ts' });
  assert.deepEqual(decodeCopyData(Buffer.from('nbase.tar\0\0')), { kind: 'archive', name: 'base.tar', location: '' });
  const p = Buffer.alloc(9);
  p[0] = 0x70;
  p.writeBigInt64BE(123456789012n, 1);
  assert.deepEqual(decodeCopyData(p), { kind: 'progress', done: 123456789012 });
  assert.deepEqual(decodeCopyData(Buffer.from('m')), { kind: 'manifest' });
  const d = decodeCopyData(Buffer.from('dabc'));
  assert.equal(d.kind, 'data');
  assert.equal(d.kind === 'data' && d.data.toString(), 'abc');
});

test('malformed CopyData sub-messages are protocol errors', () => {
  assert.throws(() => decodeCopyData(Buffer.alloc(0)), ProtocolError);
  assert.throws(() => decodeCopyData(Buffer.from('x')), /unknown CopyData message type 0x78/);
  assert.throws(() => decodeCopyData(Buffer.from('nbase.tar\0')), /malformed new-archive/);
  assert.throws(() => decodeCopyData(Buffer.from('p1234')), /progress message/);
  assert.throws(() => decodeCopyData(Buffer.from('mx')), ProtocolError);
});

test('a checkpoint or manifest checksum algorithm the server does not know is a usage error, never spliced into the command', () => {
  for (const make of [baseBackupCommand, legacyBaseBackupCommand]) {
    assert.throws(() => make({ ...defaults, checkpoint: 'slow' as 'fast' }), /^UsageError: invalid checkpoint "slow", must be "fast" or "spread"$/);
    assert.throws(() => make({ ...defaults, checkpoint: "fast', WAL '1" as 'fast' }), UsageError);
    assert.throws(() => make({ ...defaults, manifestChecksums: 'MD5' as 'CRC32C' }), /^UsageError: invalid manifest checksum algorithm "MD5"/);
  }
});
