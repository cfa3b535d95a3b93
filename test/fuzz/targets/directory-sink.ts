/**
 * Fuzz target for the directory sink (sinks/directory.ts, what `pgbb restore`
 * and plain `pgbb backup` write with): random member sequences — symlinks
 * with random targets (`.`, `..`, absolute, through pg_tblspc), `..` and
 * absolute paths, duplicates, every kind, random modes, tablespaces at
 * random places (fresh, non-empty, relative, around the target), archives in
 * any order — written into a fresh sandbox per case.
 *
 * Whether the sink accepts or refuses, after each case: nothing in the
 * sandbox outside the target and the fresh tablespace locations changed
 * (names, types, modes, content); inside them no setuid/setgid/sticky bit,
 * no write for group or others, and links only at pg_tblspc/<oid> pointing
 * at a tablespace location.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent, EntryKind, StartEvent } from '../../../src/events';
import { DirectorySink } from '../../../sinks/directory';
import { snapshotTree } from '../../support/hostile-backup';
import type { Rng } from '../support/random';
import type { FuzzTarget } from '../support/target';

interface Ctx {
  root: string;
}

const NAMES = ['a', 'b', 'x', 'f', 'pg_tblspc', '16385', '16386', 'pg_wal', 'global', 'archive_status', 'backup_manifest.tmp', 'backup_manifest'];
const BAD_NAMES = ['..', '.', ''];
const KINDS: EntryKind[] = ['file', 'file', 'file', 'directory', 'directory', 'symlink'];
const MTIME = new Date('2024-01-02T03:04:05Z');

/** Mostly below a directory met before (so that many sequences get far), sometimes anywhere, sometimes climbing. */
function randomPath(rng: Rng, seen: BackupEvent[]): string {
  const dirs = seen.flatMap((e) => (e.type === 'entry' && e.kind !== 'file' ? [e.path] : []));
  const name = () => (rng.chance(0.04) ? rng.pick(BAD_NAMES) : rng.pick(NAMES));
  const parts = dirs.length && rng.chance(0.7) ? [rng.pick(dirs), name()] : rng.chance(0.8) ? [name()] : [name(), name()];
  return (rng.chance(0.02) ? '/' : '') + parts.join('/');
}

/** One archive's members: random, with a few of PostgreSQL's shapes mixed in. */
function members(rng: Rng, kind: string, oids: string[], linkTargets: string[], seen: BackupEvent[]): BackupEvent[] {
  const out: BackupEvent[] = [];
  if (kind === 'base' && rng.chance(0.5)) {
    out.push({ type: 'entry', path: 'pg_tblspc', kind: 'directory', size: 0, mode: 0o700, mtime: MTIME }, { type: 'entry-end' });
    for (const oid of oids) if (rng.chance(0.7)) out.push({ type: 'entry', path: `pg_tblspc/${oid}`, kind: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkTarget: rng.pick(linkTargets) }, { type: 'entry-end' });
  }
  for (let n = rng.int(10); n > 0; n--) {
    const dup = seen.filter((e) => e.type === 'entry');
    if (dup.length && rng.chance(0.05)) {
      out.push(rng.pick(dup), { type: 'entry-end' });
      continue;
    }
    const k = rng.pick(KINDS);
    const body = k === 'file' ? rng.bytes(rng.int(200)) : Buffer.alloc(0);
    const entry: BackupEvent = { type: 'entry', path: randomPath(rng, seen), kind: k, size: body.length, mode: rng.int(0o10000), mtime: MTIME, ...(k === 'symlink' ? { linkTarget: rng.pick(linkTargets) } : {}) };
    out.push(entry);
    seen.push(entry);
    if (body.length) out.push({ type: 'data', offset: 0, chunk: body.subarray(0, 100) }, ...(body.length > 100 ? [{ type: 'data', offset: 100, chunk: body.subarray(100) } as BackupEvent] : []));
    out.push({ type: 'entry-end' });
  }
  return out;
}

async function runCase(rng: Rng, ctx: Ctx, i: number): Promise<void> {
  const box = join(ctx.root, `c${i}`);
  await fs.mkdir(join(box, 'outside'), { recursive: true });
  await fs.writeFile(join(box, 'outside', 'keep'), 'keep', { mode: 0o644 });
  await fs.symlink(join(box, 'outside'), join(box, 'link-to-outside'));
  if (rng.chance(0.5)) await fs.mkdir(join(box, 't'));
  const target = join(box, 't', 'data');
  // Fresh places a tablespace may go (skipped by the snapshot), and places it must never go.
  const fresh = [join(box, 'ts1'), join(box, 'ts2'), join(box, 'mapped')];
  const hostile = [join(box, 'outside'), box, join(box, 't'), join(target, 'ts'), 'rel/ts', join(box, 'link-to-outside', 'ts'), join(box, 'outside', 'keep')];
  const oids = ['16385', '16386', ...(rng.chance(0.05) ? ['1x'] : [])].slice(0, rng.int(3));
  const locations = oids.map((_, k) => (rng.chance(0.9) ? (rng.chance(0.9) ? fresh[k]! : rng.pick(fresh.slice(0, 2))) : rng.pick(hostile)));
  const mapping: Record<string, string> = {};
  if (locations.length && rng.chance(0.4)) mapping[rng.pick(locations)] = rng.chance(0.8) ? fresh[2]! : rng.pick(hostile.filter((h) => h.startsWith('/')));
  const start: StartEvent = {
    type: 'start', serverVersion: 150000, systemIdentifier: '1', timeline: 1, startLsn: '0/2000028',
    tablespaces: [...oids.map((oid, k) => ({ oid, location: locations[k]!, size: null })), { oid: null, location: '', size: null }],
    walSegmentSize: 16 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'fuzz', totalBytes: null,
  };
  const linkTargets = ['.', '..', '../..', '/', box, join(box, 'outside'), 'pg_tblspc/16385/..', 'a', 'a/b', '../outside', ...fresh];
  const events: BackupEvent[] = [start];
  const seen: BackupEvent[] = [];
  const archives = ['base', 'wal', ...oids, '99999'];
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const name = rng.chance(0.5) ? 'base' : rng.chance(0.1) ? '99999' : rng.pick(archives.slice(0, -1));
    const kind = name === 'base' ? 'base' : name === 'wal' ? 'wal' : 'tablespace';
    events.push({ type: 'archive', kind, name: kind === 'wal' ? 'pg_wal' : name, location: '' }, ...members(rng, kind, oids, linkTargets, seen), { type: 'archive-end' });
  }
  if (rng.chance(0.5)) events.push({ type: 'manifest', data: Buffer.from('{}\n') });
  if (rng.chance(0.95)) events.push({ type: 'end', endLsn: '0/3000000', timeline: 1 });

  // The target's parents are the user's to name: made if missing (and left, as pg_basebackup leaves them).
  const written = [target, ...fresh, ...(existsSync(join(box, 't')) ? [] : [join(box, 't')])];
  const before = await snapshotTree(box, written);
  let failure: unknown = null;
  try {
    const unmapped = rng.chance(0.8) ? 'recorded' : 'refuse';
    await pipeline(Readable.from(events, { objectMode: true }), new DirectorySink({ target, tablespaceMapping: mapping, unmappedTablespaces: unmapped, sync: false }));
  } catch (err) {
    failure = err;
  }
  assert.deepEqual(await snapshotTree(box, written), before, 'nothing outside the target and the tablespace locations changed');
  assert.ok(!existsSync(join(process.cwd(), 'rel')), 'a relative location is never created');
  for (const top of [target, ...fresh]) {
    if (!existsSync(top)) continue;
    assert.equal((await fs.stat(top)).mode & 0o7022, 0, `${top}: mode`);
    for (const [rel, desc] of await snapshotTree(top)) {
      const [type, mode, linkTo] = desc.split(' ');
      if (type === 'link') {
        assert.ok(top === target && /^pg_tblspc\/\d+$/.test(rel), `a link at ${rel} in ${top}`);
        assert.ok(fresh.includes(linkTo!), `pg_tblspc link to ${linkTo}`);
      } else assert.equal(Number.parseInt(mode!, 8) & 0o7022, 0, `${rel}: mode ${mode}`);
    }
  }
  await fs.rm(box, { recursive: true, force: true });
  if (failure) throw failure;
}

export const directory: FuzzTarget<Ctx> = {
  setup: () => ({ root: mkdtempSync(join(tmpdir(), 'pgbb-fuzz-dirsink-')) }),
  run: runCase,
  teardown(ctx) {
    if (ctx) rmSync(ctx.root, { recursive: true, force: true });
  },
};
