import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupIdTime, backupKey, newBackupId, parseS3Url, splitBackupId } from '../../../src/s3/s3-url';
import { partSizeFor, parsePartSize } from '../../../src/s3/object-writer';

test('parseS3Url: bucket and prefix; bad buckets and escaping prefixes refused', () => {
  assert.deepEqual(parseS3Url('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
  assert.deepEqual(parseS3Url('s3://my-bucket/a/b/'), { bucket: 'my-bucket', prefix: 'a/b' });
  for (const bad of ['s3://', 's3://A_B/x', 's3://b/../x', 's3://bb/a//b', 's3://bb/./x', 'http://bb/x', 's3://bb/a\u0000']) {
    assert.throws(() => parseS3Url(bad), /S3|s3/, bad);
  }
});

test('backup ids: made from the start time, told apart from a prefix, and read back', () => {
  const at = new Date(Date.UTC(2026, 11, 2, 9, 15, 7, 123));
  const id = newBackupId(at);
  assert.equal(id, '20261202T091507.123Z-F');
  assert.equal(backupIdTime(id).getTime(), at.getTime());
  assert.deepEqual(splitBackupId(parseS3Url(`s3://bkt/team/db1/${id}`)), { repo: { bucket: 'bkt', prefix: 'team/db1' }, id });
  assert.deepEqual(splitBackupId(parseS3Url('s3://bkt/team/db1')), { repo: { bucket: 'bkt', prefix: 'team/db1' }, id: null });
  assert.equal(backupKey({ bucket: 'bkt', prefix: '' }, id, 'base.tar.zst'), `${id}/base.tar.zst`);
  assert.equal(backupKey({ bucket: 'bkt', prefix: 'p' }, id, ''), `p/${id}/`);
});

test('part sizes: 8 MiB by default, grown so that 5 TB stays under 10,000 parts, never above 5 GiB', () => {
  assert.equal(partSizeFor(null), 8 << 20);
  assert.equal(partSizeFor(1e9), 8 << 20);
  const fiveTB = 5 * 1024 ** 4;
  const p = partSizeFor(fiveTB);
  assert.ok(fiveTB / p < 10_000, `${fiveTB / p} parts`);
  assert.ok(fiveTB * 1.4 / p < 10_000, 'with room for the estimate to grow');
  assert.equal(partSizeFor(1e15), 5 * 1024 ** 3);
  assert.equal(parsePartSize('5M'), 5 << 20);
  assert.equal(parsePartSize('1G'), 1 << 30);
  assert.throws(() => parsePartSize('4M'), /out of range/);
  assert.throws(() => parsePartSize('lots'), /invalid part size/);
});
