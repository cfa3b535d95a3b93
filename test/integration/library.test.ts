/**
 * The library as a script uses it (src/index.ts, `import … from 'pgbb'`):
 * backup() with nothing but a connection and a target takes what `pgbb
 * backup -D` takes (WAL streamed straight into pg_wal/, chunk map, manifest
 * last), a custom observer plugged into it sees every byte, and verify()
 * and restore() read it back; a plain backup CRC32Cs each byte it receives
 * once, though the manifest check and the chunk map both want it. README's custom sink and custom observer run
 * as README prints them (only the host and paths swapped for the test's),
 * and compile against the package's own types.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Transform } from 'node:stream';
import { Cluster, makeTempDir } from '../support/cluster';
import { backup, compose, DirectorySink, ReplicationSource, restore, TarFilesSink, tee, verify, type BackupEvent } from '../../src/index';
import { readmeSnippet, runSnippet, typeCheck } from '../support/readme-snippets';
import { crcBytesDuring } from '../support/crc-count';

let pg: Cluster;
let root: string;
before(async () => {
  pg = await Cluster.create({ conf: { fsync: false } });
  root = await makeTempDir('pgbb-lib-');
});
after(async () => {
  await pg?.destroy();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

test('README: a custom observer transform counting bytes per archive, plugged into backup()', async () => {
  const connection = { host: pg.host, port: String(pg.port), user: 'postgres' };
  const target = join(root, 'db1');
  // --- the README example, as it reads there (connection and target from above) ---
  const perArchive = new Map<string, number>();
  let archive = '';
  const countBytes = new Transform({
    objectMode: true,
    transform(ev: BackupEvent, _enc, done) {
      if (ev.type === 'archive') archive = ev.name;
      if (ev.type === 'data') perArchive.set(archive, (perArchive.get(archive) ?? 0) + ev.chunk.length);
      done(null, ev); // an observer passes every event on, unchanged
    },
  });
  const result = await backup({ connection, target, checkpoint: 'fast', observers: [countBytes] });
  // --- end of the example ---
  assert.deepEqual([...perArchive.keys()].sort(), ['base', 'pg_wal']);
  assert.equal([...perArchive.values()].reduce((a, b) => a + b, 0), result.bytes, 'the observer saw every byte the result counts');
  // The CLI's defaults: WAL streamed straight into pg_wal/ (the sink's walPlace), chunk map, manifest.
  assert.ok((await fs.readdir(join(target, 'pg_wal'))).some((n) => /^[0-9A-F]{24}$/.test(n)));
  assert.ok(existsSync(join(target, 'pg_wal', 'pgbb.chunkmap')));
  assert.ok(existsSync(join(target, 'backup_manifest')));
  assert.ok(!existsSync(join(target, '.pgbb-lock')));

  const report = await verify({ source: target });
  assert.deepEqual(report.problems, []);
  assert.equal(report.ok, true);
  assert.ok(report.walSegments >= 1);
  const restored = await restore({ source: target, target: join(root, 'restored'), sync: false });
  assert.equal(restored.files, result.files + 1, 'and the chunk map the backup recorded after the observers');
});

test('a plain backup CRC32Cs each received byte once: the chunk map takes the manifest check\'s CRCs', async (t) => {
  const connection = { host: pg.host, port: String(pg.port), user: 'postgres' };
  const target = join(root, 'crc-once');
  const { value: result, bytes } = await crcBytesDuring(() => backup({ connection, target, checkpoint: 'fast', sync: false }));
  t.diagnostic(`${bytes} bytes CRC32C'd for ${result.bytes} received`);
  // Each byte once (the check and the map both digest every listed file), plus at most one event per 1 MiB chunk boundary and WAL records' own CRCs.
  assert.ok(bytes >= result.bytes && bytes < result.bytes * 1.2, `${bytes} bytes CRC32C'd for ${result.bytes} received`);
  await verify({ source: target });
});

test('verify() in report mode gathers the problems of every check from one read', async () => {
  const target = join(root, 'db1');
  const [rel] = (await fs.readdir(join(target, 'base', '5'))).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  const file = join(target, 'base', '5', rel);
  const fh = await fs.open(file, 'r+');
  const { size } = await fh.stat();
  if (size >= 8192) await fh.write(Buffer.from([0xa5]), 0, 1, 4000);
  await fh.close();
  await fs.rm(join(target, 'pg_ident.conf'));
  const report = await verify({ source: target });
  assert.equal(report.ok, false);
  assert.ok(report.problems.some((p) => p.startsWith('manifest: ') && p.includes('pg_ident.conf')), report.problems.join('\n'));
  if (size >= 8192) assert.ok(report.problems.some((p) => p.startsWith('page checksums: ')), report.problems.join('\n'));
  assert.ok(report.walSegments >= 1, 'the WAL check still read the whole backup');
  assert.equal(report.problemCount, report.problems.length);
});

test('tee of a plain directory and tar files with streamed WAL: written in place into the directory\'s pg_wal/, the tar sink writes it from the read-back data; both verify', async () => {
  const connection = { host: pg.host, port: String(pg.port), user: 'postgres' };
  const plain = join(root, 'tee-plain');
  const tar = join(root, 'tee-tar');
  const sink = tee(new TarFilesSink({ target: tar, sync: false }), new DirectorySink({ target: plain, sync: false }));
  let place: unknown;
  await compose({ sink, source: (p) => ((place = p), new ReplicationSource({ connection, wal: 'stream', checkpoint: 'fast', ...p })) });
  assert.deepEqual(place, { walDir: join(plain, 'pg_wal') }, 'the directory takes WAL in place, though it comes second');
  assert.ok((await fs.readdir(tar)).includes('pg_wal.tar'));
  assert.ok(!(await fs.readdir(tar)).some((n) => n.startsWith('pgbb-wal-')), 'no spool in the tar target');
  for (const source of [plain, tar]) {
    const r = await verify({ source });
    assert.deepEqual(r.problems, [], source);
    assert.ok(r.walSegments >= 1, source);
  }
});

const SINK = '**A custom sink**';
const OBSERVER = '**A custom observer**';

test('README: the custom sink and observer are under 15 lines each and compile against the package\'s own types (import from \'pgbb\')', () => {
  const snippets = [readmeSnippet(SINK), readmeSnippet(OBSERVER)];
  for (const s of snippets) assert.ok(s.trimEnd().split('\n').length < 15, s);
  // With a third, broken on purpose beside them: the check is a real one, and only that one fails it.
  const found = typeCheck([...snippets, snippets[1]!.replace('onData(', 'onDatum(')]);
  assert.ok(found.length > 0);
  assert.deepEqual(found.filter((d) => !d.startsWith('snippet2.ts: ')), []);
  assert.match(found.join('\n'), /not declared in the base class 'Observer'/);
});

test('README\'s custom sink, run as printed: a live backup as tar + zstd into a file, read back by zstdDecompress → tarUnpack → DirectorySink', async () => {
  const dir = join(root, 'readme-sink');
  await fs.mkdir(dir);
  const host = `{ host: ${JSON.stringify(pg.host)}, port: '${pg.port}', user: 'postgres' }`;
  await runSnippet(readmeSnippet(SINK), [
    ["{ host: 'db1', user: 'replicator' }", host],
    ["'backup.tar.zst'", JSON.stringify(join(dir, 'backup.tar.zst'))],
    ["'/srv/restore'", JSON.stringify(join(dir, 'restored'))],
    ["'/srv/restore-ts'", JSON.stringify(join(dir, 'restored-ts'))],
  ]);
  assert.match(await fs.readFile(join(dir, 'restored', 'PG_VERSION'), 'utf8'), /^1[4-8]\n$/);
  assert.ok((await fs.readdir(join(dir, 'restored', 'pg_wal'))).some((n) => /^[0-9A-F]{24}$/.test(n)), 'WAL streamed, the library default');
  const r = await verify({ source: join(dir, 'restored') });
  assert.deepEqual(r.problems, []);
});

test('README\'s custom observer, run as printed: counts the bytes of each archive of a live backup', async () => {
  const host = `{ host: ${JSON.stringify(pg.host)}, port: '${pg.port}', user: 'postgres' }`;
  const counter = (await runSnippet(readmeSnippet(OBSERVER), [
    ["{ host: 'db1', user: 'replicator' }", host],
    ["'/backups/db1'", JSON.stringify(join(root, 'readme-observer'))],
  ], 'return counter;')) as { bytes: Map<string, number> };
  assert.deepEqual([...counter.bytes.keys()].sort(), ['base', 'pg_wal']);
  assert.ok(counter.bytes.get('base')! > 1_000_000, 'a data directory\'s worth of bytes');
});
