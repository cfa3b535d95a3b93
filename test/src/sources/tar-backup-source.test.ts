/**
 * Tests for the tar backup sources (src/sources/tar-backup-source.ts) against
 * what pgbb's own sinks write: a synthetic backup (test/support/
 * synthetic-backup.ts) with a 300-byte path, a 200-byte symlink target and a
 * non-UTF-8 file name goes through StdoutSink → tarStreamSource and
 * TarFilesSink → tarDirectorySource, plain and zstd, and comes back member for
 * member, byte for byte, in a well-ordered member stream that verifies
 * against its manifest.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import type { BackupEvent } from '../../../src/events';
import { pathToBytes } from '../../../src/codec/path-bytes';
import { tarDirectorySource, tarStreamSource } from '../../../src/sources/tar-backup-source';
import { manifestVerify } from '../../../transforms/manifest-verify';
import { IoError } from '../../../src/errors';
import { LIMITS } from '../../../src/io/read-limited';
import { encodeHeader } from '../../../src/codec/tar/encode-header';
import { LONG_NAME, LONG_TARGET, RAW_NAME, sampleEvents, sampleStream, sampleTarDirectory } from '../../support/synthetic-backup';
import { plant, releaseFifos, within, type Hostile } from '../../support/hostile-files';

after(releaseFifos);

/** Members per archive: "archive|path" → kind, size, mode, link target, data (hex of bytes). */
function members(events: BackupEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  let archive = '';
  let key = '';
  let desc = '';
  let data: Buffer[] = [];
  for (const ev of events) {
    if (ev.type === 'archive') archive = ev.name;
    else if (ev.type === 'entry') {
      key = `${archive}|${pathToBytes(ev.path).toString('hex')}`;
      desc = `${ev.kind} ${ev.size} ${ev.mode.toString(8)} ${ev.linkTarget === undefined ? '' : pathToBytes(ev.linkTarget).toString('hex')}`;
      data = [];
    } else if (ev.type === 'data') data.push(ev.chunk);
    else if (ev.type === 'entry-end') out.set(key, `${desc} ${Buffer.concat(data).toString('hex')}`);
  }
  return out;
}

async function collect(source: Readable): Promise<BackupEvent[]> {
  const events: BackupEvent[] = [];
  let open = false;
  await pipeline(
    source,
    manifestVerify({ require: true }),
    new Writable({
      objectMode: true,
      write(ev: BackupEvent, _e, cb) {
        // The member-stream contract: entry-end only after its entry.
        if (ev.type === 'entry') open = true;
        if (ev.type === 'entry-end') {
          if (!open) return cb(new Error(`entry-end without an entry after ${events.length} events`));
          open = false;
        }
        events.push(ev.type === 'data' ? { ...ev, chunk: Buffer.from(ev.chunk) } : ev);
        cb();
      },
    }),
  );
  return events;
}

function assertSameBackup(got: BackupEvent[]): void {
  const want = members(sampleEvents());
  const have = members(got);
  // The -D - stream leaves base's pg_tblspc/16385 link out (the tablespace is
  // inline) and the source puts it back; its mtime is not kept.
  for (const [k, v] of want) assert.equal(have.get(k), v, `member ${k}`);
  assert.deepEqual([...have.keys()].sort(), [...want.keys()].sort());
  assert.equal(got[0]!.type, 'start');
  assert.equal(got[got.length - 1]!.type, 'end');
  const paths = got.flatMap((e) => (e.type === 'entry' ? [e.path] : []));
  for (const p of [LONG_NAME, RAW_NAME]) assert.ok(paths.includes(p), p);
  const link = got.find((e) => e.type === 'entry' && e.path === 'link-to-long-target');
  assert.equal(link?.type === 'entry' && link.linkTarget, LONG_TARGET.slice(1));
  assert.ok(Buffer.byteLength(LONG_NAME) > 250 && Buffer.byteLength(LONG_TARGET) > 200);
}

for (const zstd of [false, true]) {
  test(`StdoutSink → tarStreamSource${zstd ? ' (zstd)' : ''}: a 300-byte path, a 200-byte link target and a non-UTF-8 name come back exactly`, async () => {
    const stream = await sampleStream({ zstd });
    assertSameBackup(await collect(tarStreamSource(Readable.from([stream]))));
  });

  test(`TarFilesSink → tarDirectorySource${zstd ? ' (zstd)' : ''}: the same members come back exactly`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-tar-src-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await sampleTarDirectory(join(dir, 'b'), { zstd });
    assertSameBackup(await collect(tarDirectorySource(join(dir, 'b'))));
  });
}

for (const [name, compress] of [
  ['gzip', (b: Buffer) => gzipSync(b)],
  ['lz4', (b: Buffer) => execFileSync('lz4', ['-c'], { input: b, stdio: ['pipe', 'pipe', 'ignore'] })],
] as const) {
  test(`tarStreamSource: a ${name} stream is told by its magic and read as it arrives`, async () => {
    const stream = compress(await sampleStream());
    const pieces = Array.from({ length: Math.ceil(stream.length / 1000) }, (_, k) => stream.subarray(k * 1000, (k + 1) * 1000));
    assertSameBackup(await collect(tarStreamSource(Readable.from(pieces))));
  });
}

test('the tablespace directory entry of a -D - stream is left out whole: no entry-end without an entry (fuzz regression)', async () => {
  // tarStreamEvents skipped the `pg_tblspc/<oid>` directory entry but passed
  // its entry-end on, right after the tablespace's archive event.
  const events = await collect(tarStreamSource(Readable.from([await sampleStream()])));
  const i = events.findIndex((e) => e.type === 'archive' && e.kind === 'tablespace');
  assert.equal(events[i + 1]!.type, 'entry');
});

test('a -D - stream whose base archive comes before a tablespace gets its pg_tblspc link back (found writing these tests)', async () => {
  // The server sends tablespaces first and base last; the plain and tar-directory
  // sources emit base first. Only a base closed by the manifest used to get its
  // links back, so a stream written from those sources lost pg_tblspc/<oid>.
  const events = await collect(tarStreamSource(Readable.from([await sampleStream()])));
  const baseEnd = events.findIndex((e, i) => e.type === 'archive-end' && events.slice(0, i).some((x) => x.type === 'archive' && x.kind === 'base'));
  const link = events.findIndex((e) => e.type === 'entry' && e.path === 'pg_tblspc/16385');
  assert.ok(link > 0 && link < baseEnd, 'the link is inside the base archive');
  const ev = events[link]!;
  assert.ok(ev.type === 'entry' && ev.kind === 'symlink' && ev.linkTarget === '/srv/pgbb-fuzz-ts');
});

/** sampleStream up to its backup_manifest member, whose header now claims `size` bytes, then `data`. */
async function streamWithManifest(size: number, data: Buffer): Promise<Buffer> {
  const stream = await sampleStream();
  let at = -1;
  for (let i = 0; i < stream.length; i += 512) if (stream.toString('latin1', i, i + 16) === 'backup_manifest\0') at = i;
  assert.ok(at > 0, 'the sample stream has a backup_manifest member');
  return Buffer.concat([stream.subarray(0, at), encodeHeader({ name: 'backup_manifest', type: '0', size, mode: 0o600, mtime: new Date() }), data]);
}

test('a -D - stream whose backup_manifest member claims more than a manifest can hold is refused at its header, naming it', async () => {
  const stream = await streamWithManifest(LIMITS.manifest.maxBytes + 1, Buffer.alloc(64 * 1024));
  await assert.rejects(
    collect(tarStreamSource(Readable.from([stream]))),
    (e: unknown) => e instanceof IoError && /^backup_manifest member of standard input holds 524288001 bytes, more than 524288000/.test(e.message),
  );
});

test('a -D - stream with a manifest member under the cap still reads it whole', async () => {
  const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}');
  const events: BackupEvent[] = [];
  const stream = Buffer.concat([await streamWithManifest(manifest.length, manifest), Buffer.alloc(512 - manifest.length), Buffer.alloc(1024)]);
  for await (const ev of tarStreamSource(Readable.from([stream]))) events.push(ev as BackupEvent);
  const m = events.find((e) => e.type === 'manifest');
  assert.ok(m?.type === 'manifest' && m.data.equals(manifest));
});

const dirCases: Array<[string, Hostile | 'link', RegExp]> = [
  ['base.tar', 'fifo', /^archive ".*\/base\.tar" is a FIFO, not a regular file$/],
  ['base.tar', 'link', /^archive ".*\/base\.tar" is a symbolic link: refusing to follow it$/],
  ['backup_manifest', 'fifo', /^backup_manifest ".*\/backup_manifest" is a FIFO, not a regular file$/],
  ['backup_manifest', 'dev-zero-link', /^backup_manifest ".*\/backup_manifest" is a symbolic link: refusing to follow it$/],
  ['backup_manifest', 'oversize', /^backup_manifest ".*\/backup_manifest" is larger than 524288000 bytes/],
];
for (const [name, kind, why] of dirCases) {
  test(`a tar directory whose ${name} is ${kind === 'link' ? 'a symlink to the real one' : kind} is refused at once, in one line naming it`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-tar-hostile-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const b = join(dir, 'b');
    await sampleTarDirectory(b);
    if (kind === 'link') {
      renameSync(join(b, name), join(dir, name));
      symlinkSync(join(dir, name), join(b, name));
    } else plant(join(b, name), kind, LIMITS.manifest.maxBytes);
    const drain = async () => {
      for await (const _ of tarDirectorySource(b));
    };
    await assert.rejects(within(drain()), (e: unknown) => e instanceof IoError && why.test(e.message));
  });
}

test('destroying a -D - source that waits on input nobody writes ends the wait: it closes at once, its input destroyed', async () => {
  const input = new PassThrough();
  const source = tarStreamSource(input);
  source.on('data', () => {}).on('error', () => {});
  const closed = new Promise<void>((r) => source.once('close', () => r()));
  await new Promise((r) => setTimeout(r, 50)); // the generator is now awaiting its first input chunk
  source.destroy(new Error('aborted'));
  await within(closed, 1000);
  assert.ok(input.destroyed);
});

test('a tar directory\'s backup_manifest comes in pieces of at most 256 KiB, never read whole; the end LSN from it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tar-pieces-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const b = join(dir, 'b');
  await sampleTarDirectory(b);
  const real = readFileSync(join(b, 'backup_manifest'));
  // Padding before the WAL ranges puts them across a piece boundary.
  const at = real.indexOf('"WAL-Ranges"');
  const padded = Buffer.concat([real.subarray(0, at), Buffer.alloc(256 * 1024 - at - 40, 0x20), real.subarray(at)]);
  writeFileSync(join(b, 'backup_manifest'), padded);
  const events: BackupEvent[] = [];
  for await (const ev of tarDirectorySource(b)) events.push(ev as BackupEvent);
  const pieces = events.filter((e) => e.type === 'manifest') as { data: Buffer }[];
  assert.equal(pieces.length, 2);
  for (const p of pieces) assert.ok(p.data.length <= 256 * 1024);
  assert.ok(Buffer.concat(pieces.map((p) => p.data)).equals(padded));
  const end = events[events.length - 1]!;
  assert.ok(end.type === 'end' && end.endLsn === '0/2000100' && end.timeline === 1, JSON.stringify(end));
});

test('a pg_basebackup base.tar cut short: the error, and no descriptor of it left open (its first read is closed too)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-tar-cut-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
  const member = (name: string, data: Buffer) => Buffer.concat([encodeHeader({ name, type: '0', size: data.length, mode: 0o600, mtime: new Date() }), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
  // No pgbb descriptor (pg_basebackup's), and cut inside its second member: deriving the descriptor fails.
  const whole = Buffer.concat([member('backup_label', label), member('PG_VERSION', Buffer.alloc(100_000, 0x31))]);
  writeFileSync(join(dir, 'base.tar'), whole.subarray(0, 2048));
  await assert.rejects(collect(tarDirectorySource(dir)), /base\.tar/);
  const open = readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
  assert.deepEqual(open.filter((p) => p.startsWith(dir)), [], 'descriptors still open on the backup');
});
