import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord, RECORD_MAX_BYTES, type BackupRecord } from '../../../src/s3/backup-record';

const good: BackupRecord = {
  format: 'pgbb-s3-backup',
  version: 1,
  id: '20261202T091507.123Z-F',
  kind: 'full',
  parent: null,
  label: 'x',
  startTime: '2026-12-02T09:15:07.123Z',
  endTime: '2026-12-02T09:16:07.123Z',
  serverVersion: 150010,
  systemIdentifier: '7212345678901234567',
  timeline: 1,
  startLsn: '0/2000028',
  endLsn: '0/2000100',
  bytes: 123,
  compression: 'zstd',
  transform: null,
  objects: [
    { name: 'base.tar.zst', size: 10, crc32c: '0a0b0c0d' },
    { name: 'backup_manifest', size: 5, crc32c: 'deadbeef' },
  ],
};

test('backup record: round trip', () => {
  assert.deepEqual(decodeRecord(encodeRecord(good), 'r'), good);
});

test('backup record: hostile records are refused, naming the field', () => {
  const bad = (patch: Record<string, unknown>, why: RegExp) =>
    assert.throws(() => decodeRecord(Buffer.from(JSON.stringify({ ...good, ...patch })), 's3://b/p/id/backup.json'), why);
  bad({ objects: [{ name: '../../etc/passwd', size: 1, crc32c: '00000000' }] }, /objects\[0\]\.name/);
  bad({ objects: [{ name: 'base.tar.zst', size: -1, crc32c: '00000000' }, good.objects[1]] }, /objects\[0\]\.size/);
  bad({ objects: [good.objects[0]] }, /lack base\.tar or backup_manifest/);
  bad({ objects: [good.objects[0], good.objects[0], good.objects[1]] }, /appears twice/);
  bad({ kind: 'incremental' }, /without a parent/);
  bad({ startLsn: 'zz' }, /LSN/);
  bad({ id: '../x' }, /id is not a backup id/);
  assert.throws(() => decodeRecord(Buffer.from('{'), 'r'), /not valid JSON/);
  assert.throws(() => decodeRecord(Buffer.alloc(RECORD_MAX_BYTES + 1, 0x20), 'r'), /larger than/);
});
