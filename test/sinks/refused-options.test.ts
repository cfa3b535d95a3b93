/**
 * A sink refused at construction leaves nothing behind. Writable schedules
 * _construct (which creates a target or writes to the store) from its own
 * constructor, so a check after super() used to throw and still let it run:
 * a tar-files sink with a bad zstd level created its target a tick later,
 * and a directory or S3 sink refused for a missing target, bucket or part
 * size then failed again inside _construct, as an uncaught exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectorySink } from '../../sinks/directory';
import { TarFilesSink } from '../../sinks/tar-files';
import { S3Sink } from '../../sinks/s3';
import { UsageError } from '../../src/errors';

/** Runs `make` (which must throw a UsageError), then waits: what was scheduled before the throw has run. */
async function refused(make: () => unknown, message: RegExp): Promise<Error[]> {
  const uncaught: Error[] = [];
  const note = (err: Error) => uncaught.push(err);
  process.on('uncaughtException', note);
  try {
    assert.throws(make, (e: unknown) => e instanceof UsageError && message.test((e as Error).message));
    await sleep(100);
  } finally {
    process.off('uncaughtException', note);
  }
  return uncaught;
}

test('tar files with a bad zstd level: refused, and its target is never created', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-refused-'));
  try {
    const target = join(root, 'tar');
    const uncaught = await refused(() => new TarFilesSink({ target, compress: { method: 'zstd', level: 42 } }), /zstd level 42 is out of range/);
    assert.deepEqual(uncaught, []);
    assert.equal(existsSync(target), false, 'the refused sink created its target');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('directory, tar files and S3 sinks refused for a missing target, bucket or part size: one error, nothing uncaught after it', async () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['directory', () => new DirectorySink({ target: '' }), /no target directory given/],
    ['tar files', () => new TarFilesSink({ target: '' }), /no target directory given/],
    ['S3 bucket', () => new S3Sink({ location: { bucket: '', prefix: '' } }), /no S3 bucket given/],
    ['S3 part size', () => new S3Sink({ location: { bucket: 'b', prefix: '' }, partSize: 1024 }), /part size must be at least 5 MiB/],
    ['S3 zstd level', () => new S3Sink({ location: { bucket: 'b', prefix: '' }, compress: { method: 'zstd', level: 0 } }), /zstd level 0 is out of range/],
  ];
  for (const [what, make, message] of cases) {
    const uncaught = await refused(make, message);
    assert.deepEqual(uncaught.map((e) => e.message), [], what);
  }
});
