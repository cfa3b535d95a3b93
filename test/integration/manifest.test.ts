/**
 * Manifest verification and building against a real PostgreSQL 15 (with a
 * tablespace and -X fetch WAL): the server's manifest checks out file by
 * file; the manifest pgbb builds is the very manifest the server sends, byte
 * for byte, and pg_verifybackup accepts the directory it lands in; a byte
 * corrupted in transit fails the backup naming the file and leaves nothing
 * behind. Also against PostgreSQL 17 (embedded binaries, no pg_verifybackup
 * there): the built version 2 manifest equals the server's byte for byte.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { test } from 'node:test';
import { Cluster, embeddedBinDir } from '../support/cluster';
import { useSampleServer } from '../support/sample-server';
import { DirectorySink, ManifestError, ReplicationSource, runPipeline, tap, type BackupEvent } from '../../src/index';
import { parseManifest } from '../../src/codec/manifest';
import { manifestVerify } from '../../transforms/manifest-verify';
import { manifestBuild } from '../../transforms/manifest-build';

const pg = useSampleServer();
const { scratch } = pg;

function source(): ReplicationSource {
  return pg.source({ wal: 'fetch' });
}

test('ReplicationSource → manifestVerify → DirectorySink: every file of the server manifest checks out', async () => {
  const root = await scratch('pgbb-mverify-');
  const verify = manifestVerify();
  await runPipeline(source(), [verify], pg.directorySink(root));
  const manifest = parseManifest(await fs.readFile(join(root, 'data', 'backup_manifest')));
  assert.ok(manifest.files.size > 900, `${manifest.files.size} files`);
  assert.ok([...manifest.files.keys()].some((p) => p.startsWith('pg_tblspc/')), 'tablespace files are listed');
  assert.equal(verify.result?.checked, true);
  assert.equal(verify.result?.files, manifest.files.size);
  assert.equal(verify.result?.bytes, [...manifest.files.values()].reduce((n, f) => n + f.size, 0));
});

test('ReplicationSource → manifestBuild({ replace: true }) → DirectorySink: the server\'s manifest byte for byte; pg_verifybackup accepts it', async () => {
  const root = await scratch('pgbb-mbuild-');
  let server = null as Buffer | null;
  const build = manifestBuild({ replace: true });
  let written = 0;
  const captureServer = tap((ev) => {
    // The server's manifest comes in pieces (src/events.ts).
    if (ev.type === 'manifest') server = server ? Buffer.concat([server, ev.data]) : ev.data;
  });
  const countWritten = tap((ev) => {
    if (ev.type === 'manifest') written++;
  });
  await runPipeline(source(), [captureServer, build, countWritten], pg.directorySink(root));
  assert.ok(server, 'the server sent its manifest');
  assert.equal(written, 1, 'exactly one manifest reaches the sink');
  const built = build.result!.manifest!;
  const ours = await fs.readFile(join(root, 'data', 'backup_manifest'));
  assert.ok(ours.equals(built), 'the sink wrote the built manifest');
  assert.equal(built.toString('utf8'), server!.toString('utf8'));
  // WAL was fetched into pg_wal, and pg_verifybackup parses it for the WAL-Ranges too.
  assert.ok((await fs.readdir(join(root, 'data', 'pg_wal'))).some((n) => /^[0-9A-F]{24}$/.test(n)));
  await pg.verify(join(root, 'data'));
});

test('a byte corrupted between source and manifestVerify fails the backup naming the file; the target is removed', async () => {
  const root = await scratch('pgbb-mcorrupt-');
  let victim = '';
  let current = '';
  let archive = '';
  const corrupt = new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _enc, cb) {
      if (ev.type === 'archive') archive = ev.kind;
      if (ev.type === 'entry') current = ev.path;
      if (ev.type === 'data' && !victim && archive === 'base' && /^base\/\d+\/\d+$/.test(current) && ev.chunk.length > 100) {
        victim = current;
        const chunk = Buffer.from(ev.chunk);
        chunk[100] ^= 0x40;
        return cb(null, { ...ev, chunk });
      }
      cb(null, ev);
    },
  });
  await assert.rejects(runPipeline(source(), [corrupt, manifestVerify()], pg.directorySink(root)), (err: unknown) => {
    assert.ok(err instanceof ManifestError, String(err));
    assert.match(err.message, new RegExp(`^backup does not match its manifest: "${victim}" has CRC32C [0-9a-f]{8} in the backup but [0-9a-f]{8} in the manifest$`));
    return true;
  });
  assert.ok(victim, 'a relation file was corrupted');
  assert.ok(!existsSync(join(root, 'data')), 'the target directory is gone');
  assert.ok(!existsSync(join(root, 'ts')), 'the tablespace directory is gone');
});

test('PostgreSQL 17: the built version 2 manifest (System-Identifier line) is the server\'s byte for byte', async () => {
  const pg17 = await Cluster.create({ binDir: embeddedBinDir(), conf: { fsync: false } });
  pg.onCleanup(() => pg17.destroy());
  const root = await scratch('pgbb-mbuild17-');
  let server = null as Buffer | null;
  const build = manifestBuild({ replace: true });
  const src = new ReplicationSource({ connection: { host: pg17.host, port: pg17.port, user: 'postgres' }, checkpoint: 'fast', wal: 'fetch' });
  await runPipeline(src, [tap((ev) => void (ev.type === 'manifest' && (server = server ? Buffer.concat([server, ev.data]) : ev.data))), build], new DirectorySink({ target: join(root, 'data'), sync: false }));
  const built = build.result!.manifest!;
  assert.match(built.toString('utf8'), /^\{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": \d+,\n"Files": \[\n/);
  assert.equal(built.toString('utf8'), server!.toString('utf8'));
  assert.equal(parseManifest(built).systemIdentifier, (await pg17.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()'))[0].id);
});
