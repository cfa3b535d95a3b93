/**
 * Tests for plainBackupSource (src/sources/plain-backup-source.ts) with the
 * directory sink it mirrors: a synthetic backup (test/support/
 * synthetic-backup.ts) written by DirectorySink comes back member for member —
 * a non-UTF-8 file name under its own bytes on disk and in the member stream,
 * a 300-byte path, a tablespace link with a 200-byte target (the only links a
 * data directory holds: the sink refuses others) — and verifies against the
 * manifest manifest-build wrote for it (Encoded-Path for the raw name).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../../../src/events';
import { pathToBytes } from '../../../src/codec/path-bytes';
import { plainBackupEvents, plainBackupSource } from '../../../src/sources/plain-backup-source';
import { DirectorySink } from '../../../sinks/directory';
import { manifestBuild } from '../../../transforms/manifest-build';
import { manifestVerify } from '../../../transforms/manifest-verify';
import { IoError, PgbbError } from '../../../src/errors';
import { LIMITS } from '../../../src/io/read-limited';
import { LONG_NAME, LONG_TARGET, RAW_NAME, sampleEvents } from '../../support/synthetic-backup';
import { plant, releaseFifos, tinyPlainBackup, within, type Hostile } from '../../support/hostile-files';

after(releaseFifos);

function files(events: BackupEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  let archive = '';
  let key = '';
  let desc = '';
  let data: Buffer[] = [];
  for (const ev of events) {
    if (ev.type === 'archive') archive = ev.name;
    else if (ev.type === 'entry') {
      key = `${archive}|${pathToBytes(ev.path).toString('hex')}`;
      desc = `${ev.kind} ${ev.kind === 'file' ? ev.size : 0} ${ev.linkTarget === undefined ? '' : pathToBytes(ev.linkTarget).toString('hex')}`;
      data = [];
    } else if (ev.type === 'data') data.push(Buffer.from(ev.chunk));
    else if (ev.type === 'entry-end') out.set(key, `${desc} ${Buffer.concat(data).toString('hex')}`);
  }
  return out;
}

test('DirectorySink → plainBackupSource: non-UTF-8 names, long paths and long link targets round-trip and verify', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-plain-src-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const target = join(root, 'data');
  const ts = join(root, LONG_TARGET.slice(1));
  // The sink makes links only at pg_tblspc/<oid>: the long target rides on the tablespace link.
  const events = sampleEvents({ tablespace: '/srv/pgbb-fuzz-ts' }).filter((ev, i, all) => {
    const at = (k: number) => all[k];
    const isLink = (e: BackupEvent | undefined) => e?.type === 'entry' && e.path === 'link-to-long-target';
    return !isLink(ev) && !(ev.type === 'entry-end' && isLink(at(i - 1)));
  });
  await pipeline(Readable.from(events, { objectMode: true }), manifestBuild(), new DirectorySink({ target, tablespaceMapping: { '/srv/pgbb-fuzz-ts': ts }, sync: true }));

  // On disk under its own bytes, and listed as Encoded-Path (as the server would).
  const raw = pathToBytes(RAW_NAME);
  assert.ok(readdirSync(target, { encoding: 'buffer' }).some((n) => n.equals(raw)), 'the file exists under its byte name');
  assert.equal((await fs.readFile(Buffer.concat([Buffer.from(`${target}/`), raw]))).toString(), 'non-UTF-8 name');
  assert.ok((await fs.readFile(join(target, 'backup_manifest'), 'utf8')).includes(`{ "Encoded-Path": "${raw.toString('hex')}", `));
  assert.ok(ts.length > 200);
  assert.equal(await fs.readFile(join(target, LONG_NAME), 'utf8'), 'long path');

  const got: BackupEvent[] = [];
  await pipeline(
    plainBackupSource(target),
    manifestVerify({ require: true }),
    new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (got.push(ev), cb()) }),
  );
  const want = files(events);
  const have = files(got);
  for (const [k, v] of want) {
    if (k === `base|${Buffer.from('pg_tblspc/16385').toString('hex')}`) continue; // points where the sink put the tablespace
    assert.equal(have.get(k), v, k);
  }
  const link = got.find((e) => e.type === 'entry' && e.path === 'pg_tblspc/16385');
  assert.ok(link?.type === 'entry' && link.linkTarget === ts);
});

function tinyBackup(): string {
  return tinyPlainBackup(mkdtempSync(join(tmpdir(), 'pgbb-plain-hostile-')));
}

async function drain(source: Readable): Promise<void> {
  for await (const _ of source);
}

const cases: Array<[string, Hostile, number, RegExp]> = [
  ['backup_label', 'fifo', 0, /^backup_label ".*\/backup_label" is a FIFO, not a regular file$/],
  ['backup_manifest', 'fifo', 0, /^backup_manifest ".*\/backup_manifest" is a FIFO, not a regular file$/],
  ['PG_VERSION', 'dev-zero-link', 0, /^PG_VERSION ".*\/PG_VERSION" is a symbolic link: refusing to follow it$/],
  ['global/pg_control', 'dev-zero-link', 0, /^pg_control ".*\/global\/pg_control" is a symbolic link: refusing to follow it$/],
  ['backup_manifest', 'oversize', LIMITS.manifest.maxBytes, /^backup_manifest ".*\/backup_manifest" is larger than 524288000 bytes/],
  ['backup_label', 'oversize', LIMITS.backupLabel.maxBytes, /^backup_label ".*\/backup_label" is larger than 65536 bytes/],
];
for (const [rel, kind, max, why] of cases) {
  test(`a plain backup whose ${rel} is ${kind} is refused at once, in one line naming it`, async (t) => {
    const dir = tinyBackup();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    plant(join(dir, rel), kind, max);
    await assert.rejects(within(drain(plainBackupSource(dir))), (e: unknown) => e instanceof IoError && why.test(e.message) && !e.message.includes('\n'));
  });
}

test("a data file replaced by a FIFO between the walk's lstat and its open is refused, not waited on", async (t) => {
  const dir = tinyBackup();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (async () => {
    // The generator itself: Readable.from would read ahead.
    for await (const ev of plainBackupEvents(dir)) {
      // The source stats the file, yields its entry, and opens it only when the next event is wanted.
      if (ev.type === 'entry' && ev.path === 'base/1/100') {
        unlinkSync(join(dir, 'base/1/100'));
        plant(join(dir, 'base/1/100'), 'fifo');
      }
    }
  })();
  await assert.rejects(within(run), (e: unknown) => e instanceof IoError && /^file ".*\/base\/1\/100" is a FIFO, not a regular file$/.test(e.message));
});

test('backup_manifest is read in pieces of at most 256 KiB, and end takes its WAL end from the last of them', async (t) => {
  const { buildManifest } = await import('../../../src/codec/manifest');
  const dir = tinyBackup();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = Array.from({ length: 6000 }, (_, i) => ({ path: `base/1/${i}`, size: i, lastModified: '2025-03-01 10:00:00 GMT', checksumAlgorithm: 'CRC32C' as const, checksum: '0000000a' }));
  const manifest = buildManifest({ version: 1, files, walRanges: [{ timeline: 3, startLsn: '0/2000028', endLsn: '1/2A000100' }] });
  assert.ok(manifest.length > 2 * 256 * 1024);
  await fs.writeFile(join(dir, 'backup_manifest'), manifest);
  const pieces: Buffer[] = [];
  let end: BackupEvent | undefined;
  for await (const ev of plainBackupEvents(dir)) {
    if (ev.type === 'manifest') pieces.push(ev.data);
    if (ev.type === 'end') end = ev;
  }
  assert.ok(pieces.length >= 3 && pieces.every((p) => p.length <= 256 * 1024), `${pieces.length} pieces`);
  assert.ok(Buffer.concat(pieces).equals(manifest));
  assert.deepEqual(end, { type: 'end', endLsn: '1/2A000100', timeline: 3 });
});

test('small files are read with no FileHandle or fs request of their own: per-file native memory would grow with the file count', async (t) => {
  const dir = tinyPlainBackup(mkdtempSync(join(tmpdir(), 'pgbb-plain-many-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { countAsyncResources } = await import('../../support/async-resources');
  const { writeFileSync } = await import('node:fs');
  const many = 300;
  for (let i = 0; i < many; i++) writeFileSync(join(dir, 'base/1', `f${i}`), `file ${i}`);
  writeFileSync(join(dir, 'base/1/big'), Buffer.alloc(300 * 1024, 0x62)); // past one piece: read through a FileHandle
  let events: BackupEvent[] = [];
  const counts = await countAsyncResources(async () => {
    events = [];
    for await (const ev of plainBackupEvents(dir)) events.push(ev);
  });
  const got = files(events);
  assert.equal(got.get(`base|${Buffer.from('base/1/f7').toString('hex')}`), `file 6  ${Buffer.from('file 7').toString('hex')}`);
  assert.equal(got.get(`base|${Buffer.from('base/1/big').toString('hex')}`)?.length, `file ${300 * 1024}  `.length + 300 * 1024 * 2);
  // pg_control, backup_label, PG_VERSION, the big file and backup_manifest: one handle each, none per small file.
  assert.ok((counts.get('FILEHANDLE') ?? 0) <= 5, `FileHandles: ${counts.get('FILEHANDLE')}`);
  const requests = (counts.get('FSREQPROMISE') ?? 0) + (counts.get('FSREQCALLBACK') ?? 0);
  assert.ok(requests < many / 4, `fs requests for ${many} small files: ${requests}`);
});

test('a small file swapped for a link, or cut short, between the walk and its read is refused, naming it', async (t) => {
  const { symlinkSync, truncateSync, writeFileSync } = await import('node:fs');
  for (const how of ['link', 'short'] as const) {
    const dir = tinyPlainBackup(mkdtempSync(join(tmpdir(), 'pgbb-plain-swap-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'outside'), 'secret!');
    const run = (async () => {
      for await (const ev of plainBackupEvents(dir)) {
        if (ev.type === 'entry' && ev.path === 'base/1/100') {
          if (how === 'link') {
            unlinkSync(join(dir, 'base/1/100'));
            symlinkSync(join(dir, 'outside'), join(dir, 'base/1/100'));
          } else truncateSync(join(dir, 'base/1/100'), 1);
        }
        assert.ok(ev.type !== 'data' || !ev.chunk.toString().includes('secret'), 'read through the link');
      }
    })();
    const why = how === 'link' ? /^file ".*\/base\/1\/100" is a symbolic link: refusing to follow it$/ : /^file ".*\/base\/1\/100" is shorter than its size 4 \(changed while reading\?\)$/;
    await assert.rejects(within(run), (e: unknown) => e instanceof PgbbError && why.test(e.message));
  }
});
