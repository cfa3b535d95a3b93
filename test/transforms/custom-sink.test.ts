/**
 * README's library example "a custom sink: tar bytes + zstd into any
 * Writable (e.g. an upload)", run as written (only the source is the
 * synthetic backup stream of test/support/synthetic-backup.ts instead of a
 * live server), read back with the system `zstd` and `tar`, and with
 * zstdDecompress → tarUnpack → DirectorySink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { manifestBuild, tarPack, zstdCompress, zstdDecompress, tarUnpack, DirectorySink, manifestVerify } from '../../src/index';
import { sampleEvents } from '../support/synthetic-backup';
import type { BackupEvent } from '../../src/events';

/** The README example, as a function of its source and its upload. */
async function backupTo(source: Readable, upload: Writable): Promise<void> {
  // ── README ──
  await pipeline(
    source,                     // e.g. new ReplicationSource({ connection: { host, user } })
    tarPack(),                  // member events → one tar stream (the `pgbb backup -D -` layout)
    zstdCompress({ level: 3 }), // bytes → one zstd frame
    upload,                     // any Writable: a file, a socket, an S3 multipart upload
  );
  // ── end ──
}

/** The sample backup without its link outside pg_tblspc (a data directory refuses it). */
function events(): BackupEvent[] {
  const evs = sampleEvents();
  const i = evs.findIndex((e) => e.type === 'entry' && e.path === 'link-to-long-target');
  evs.splice(i, 2);
  return evs;
}

test('README: tarPack() → zstdCompress() into a Writable; `zstd -d | tar -x` and tarUnpack() read it back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-custom-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'backup.tar.zst');
  await backupTo(Readable.from(events()).pipe(manifestBuild()), createWriteStream(file));

  // The system tools.
  const listing = execFileSync('sh', ['-c', `zstd -dc "${file}" | tar -tvf -`], { encoding: 'utf8' });
  assert.match(listing, /backup_label/);
  assert.match(listing, /pg_tblspc\/16385\/PG_15_202209061\/1\/16390/);
  assert.match(listing.trim().split('\n').pop()!, /backup_manifest$/);
  const x = join(dir, 'x');
  execFileSync('sh', ['-c', `mkdir "${x}" && zstd -dc "${file}" | tar -xf - -C "${x}"`]);
  assert.equal(readFileSync(join(x, 'PG_VERSION'), 'utf8'), '15\n');

  // pgbb's own transforms, checked against the manifest on the way, into a data directory.
  const target = join(dir, 'restored');
  const ts = join(dir, 'restored-ts');
  await pipeline(
    createReadStream(file),
    zstdDecompress(),
    tarUnpack(),
    manifestVerify({ require: true }),
    new DirectorySink({ target, tablespaceMapping: { '/srv/pgbb-fuzz-ts': ts }, sync: false }),
  );
  assert.equal(readFileSync(join(target, 'PG_VERSION'), 'utf8'), '15\n');
  assert.equal(readlinkSync(join(target, 'pg_tblspc', '16385')), ts);
  assert.equal(readFileSync(join(ts, 'PG_15_202209061', '1', '16390')).length, 8192);
  assert.ok(readFileSync(join(target, 'backup_manifest'), 'utf8').includes('"Manifest-Checksum"'));
});
