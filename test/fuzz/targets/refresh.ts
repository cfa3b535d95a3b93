/**
 * Fuzz target for the refresh sink (sinks/refresh-directory.ts), in a
 * sandbox per case:
 *
 *   case/data      a pgbb backup (DirectorySink + chunk-map-build), then
 *                  planted with random things: symlinks to the victims (at
 *                  pg_tblspc/<digits>, at refresh's own file names, in place
 *                  of data directories and files, inside the tablespace),
 *                  FIFOs, files where directories belong and directories
 *                  where files belong, a missing chunk map;
 *   case/ts        its tablespace, the location the backup recorded;
 *   case/victims   someone's files: plain ones, and a tree shaped like a
 *                  tablespace (PG_15_1/…) that a planted link may lead to.
 *
 * Then loadPriorState + chunk-diff + the refresh sink on a random member
 * sequence (the backup's members, some changed or dropped, plus random
 * ones: `..`, absolute paths, duplicates, members below planted links,
 * symlinks anywhere, files outside the tablespace's PG_ directory).
 * Accepted or refused with a PgbbError, either is fine; what must hold:
 * nothing outside case/data and case/ts changed — compared by lstat type,
 * link text, size and content before and after.
 *
 * FIFOs are not planted at the small files loadPriorState reads whole
 * (PG_VERSION, backup_label, pg_control, the manifest, the map, the marker):
 * reading those safely is src/io/read-limited.ts's part, not this sink's.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { AssertionError } from 'node:assert';
import { DirectorySink } from '../../../sinks/directory';
import { RefreshDirectorySink } from '../../../sinks/refresh-directory';
import { chunkMapBuild } from '../../../transforms/chunk-map-build';
import { chunkDiff } from '../../../transforms/chunk-diff';
import { runPipeline } from '../../../src/pipeline';
import { loadPriorState } from '../../../src/refresh/prior-state';
import { backupEvents, backupLabel, bytes, fakeControlFile, type BackupSpec, type Member } from '../../support/chunk-fixtures';
import type { Rng } from '../support/random';
import type { FuzzTarget } from '../support/target';

const C = 64 * 1024;
const TS_OID = '16400';
const SERVER_TS = '/nonexistent/server-ts';

interface Ctx {
  root: string;
}

const dirs = (...names: string[]): Member[] => names.map((p) => ({ path: p, kind: 'directory' as const }));

function spec(seed: number, lsn: string): BackupSpec {
  return {
    startLsn: lsn,
    base: [
      { path: 'backup_label', data: backupLabel(lsn) },
      { path: 'PG_VERSION', data: Buffer.from('15\n') },
      ...dirs('base', 'base/1', 'base/2', 'global', 'pg_wal', 'pg_wal/archive_status', 'pg_tblspc'),
      { path: 'base/1/100', data: bytes(2 * C + 300, seed) },
      { path: 'base/1/200', data: bytes(C, seed + 1) },
      { path: 'base/2/300', data: bytes(700, seed + 2) },
      { path: `pg_tblspc/${TS_OID}`, kind: 'symlink', linkTarget: SERVER_TS },
      { path: 'global/pg_control', data: fakeControlFile(undefined, seed) },
    ],
    tablespace: { oid: TS_OID, location: SERVER_TS, members: [...dirs('PG_15_1', 'PG_15_1/5'), { path: 'PG_15_1/5/500', data: bytes(C + 5, seed + 3) }] },
  };
}

/** type, link text, size and content digest of everything below `dir` (FIFOs are never opened). */
async function snapshot(dir: string, skip: Set<string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await fs.readdir(d)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.has(r)) continue;
      const p = path.join(d, name);
      const st = await fs.lstat(p);
      if (st.isSymbolicLink()) out[r] = `link:${await fs.readlink(p)}`;
      else if (st.isDirectory()) {
        out[r] = `dir:${st.mode & 0o7777}`;
        await walk(p, r);
      } else if (st.isFile()) out[r] = `file:${st.size}:${st.mode & 0o7777}:${createHash('sha256').update(await fs.readFile(p)).digest('hex').slice(0, 16)}`;
      else out[r] = `other:${st.mode}`;
    }
  };
  await walk(dir, '');
  return out;
}

async function makeVictims(dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'docs/deep'), { recursive: true });
  await fs.mkdir(path.join(dir, 'tsshape/PG_15_1/5'), { recursive: true });
  await fs.writeFile(path.join(dir, 'precious.txt'), 'do not touch\n');
  await fs.writeFile(path.join(dir, 'docs/a'), bytes(3000, 7));
  await fs.writeFile(path.join(dir, 'docs/deep/b'), 'b\n');
  await fs.writeFile(path.join(dir, 'tsshape/PG_15_1/5/500'), bytes(C + 5, 9));
  await fs.writeFile(path.join(dir, 'tsshape/PG_15_1/5/999'), 'victim in a tablespace-shaped tree\n');
}

const OWN_NAMES = ['pgbb_refresh_incomplete', 'backup_manifest.tmp', 'pg_wal/pgbb.chunkmap.tmp', 'global/pg_control.pgbb-new'];
const READ_WHOLE = new Set(['PG_VERSION', 'backup_label', 'global/pg_control', 'backup_manifest', 'pg_wal/pgbb.chunkmap', 'pgbb_refresh_incomplete']);
const PLACES = [
  ...OWN_NAMES, 'base/1', 'base/2', 'base/1/100', 'base/1/200', 'base/2/300', 'base/3', 'global', 'pg_wal', 'pg_wal/000000010000000000000009',
  'pg_tblspc/99999', `pg_tblspc/${TS_OID}`, 'pg_tblspc/1', 'backup_label', 'new-file',
];

/** One random change to the backup at `data` (tablespace at `ts`), pointing at `victims`. */
async function plant(rng: Rng, data: string, ts: string, victims: string): Promise<void> {
  const inTs = rng.chance(0.2);
  const rel = inTs ? rng.pick(['PG_15_1', 'PG_15_1/5', 'PG_15_1/5/500', 'PG_15_1/5/600', 'junk']) : rng.pick(PLACES);
  const abs = path.join(inTs ? ts : data, rel);
  const target = path.join(victims, rng.pick(['precious.txt', 'docs', 'docs/a', 'tsshape', 'tsshape/PG_15_1', 'tsshape/PG_15_1/5/999', 'missing']));
  const parent = path.dirname(abs);
  if (!(await fs.lstat(parent).catch(() => null))?.isDirectory()) return;
  await fs.rm(abs, { recursive: true, force: true });
  switch (rng.int(5)) {
    case 0:
    case 1:
      await fs.symlink(rng.chance(0.8) ? target : path.relative(parent, target), abs);
      return;
    case 2:
      if (READ_WHOLE.has(rel) && !inTs) return fs.writeFile(abs, rng.bytes(rng.int(64)));
      execFileSync('mkfifo', [abs]);
      return;
    case 3:
      return fs.writeFile(abs, rng.bytes(rng.int(300)));
    default:
      await fs.mkdir(abs);
      if (rng.chance(0.5)) await fs.symlink(target, path.join(abs, 'inner'));
  }
}

const RANDOM_PATHS = ['base/1/101', 'base/3', 'base/3/1', '../escape', '/abs/path', 'base/../../x', 'pg_tblspc/99999/PG_15_1/x', `pg_tblspc/${TS_OID}/x`, 'base/1/100', 'pg_wal/x', 'global/pg_control.pgbb-new', 'pgbb_refresh_incomplete', 'backup_manifest.tmp', 'a//b', '.', 'base/./1'];

function randomMember(rng: Rng, victims: string): Member {
  const p = rng.pick(RANDOM_PATHS);
  switch (rng.int(3)) {
    case 0:
      return { path: p, kind: 'directory' };
    case 1:
      return { path: p, kind: 'symlink', linkTarget: rng.pick([victims, '../../..', 'x', path.join(victims, 'precious.txt'), '']) };
    default:
      return { path: p, data: rng.bytes(rng.int(2 * C)) };
  }
}

/** The next backup: the first one's members, some changed or dropped or shuffled, plus random ones. */
function nextSpec(rng: Rng, victims: string): BackupSpec {
  const s = spec(rng.chance(0.5) ? 1 : 2 + rng.int(5), '0/3000028');
  s.base = s.base.filter((m) => !(rng.chance(0.1) && m.path !== 'global/pg_control'));
  for (let n = rng.chance(0.5) ? 0 : 1 + rng.int(3); n > 0; n--) s.base.splice(rng.int(s.base.length + 1), 0, randomMember(rng, victims));
  if (rng.chance(0.15)) s.tablespace!.members.push(rng.chance(0.5) ? randomMember(rng, victims) : { path: rng.pick(['junk', 'PG_15_1/5/600', 'PG_16_1/x']), data: rng.bytes(100) });
  if (rng.chance(0.2) && s.base.length > 1) {
    const i = rng.int(s.base.length);
    s.base.push(s.base[i]!);
  }
  s.split = rng.pick([1000, 3000, C]);
  return s;
}

export const sink: FuzzTarget<Ctx> = {
  setup() {
    return { root: mkdtempSync(path.join(tmpdir(), 'pgbb-fuzz-refresh-')) };
  },
  async run(rng, ctx, i) {
    const caseDir = path.join(ctx.root, `case-${i}`);
    const data = path.join(caseDir, 'data');
    const ts = path.join(caseDir, 'ts');
    const victims = path.join(caseDir, 'victims');
    await fs.mkdir(caseDir);
    try {
      await makeVictims(victims);
      const tablespaceMapping = { [SERVER_TS]: ts };
      await runPipeline(Readable.from(backupEvents(spec(1, '0/2000028'))), [chunkMapBuild({ chunkSize: C, tablespaceMapping })], new DirectorySink({ target: data, sync: false, tablespaceMapping }));
      for (let n = rng.int(4); n > 0; n--) await plant(rng, data, ts, victims);
      if (rng.chance(0.2)) await fs.rm(path.join(data, 'pg_wal/pgbb.chunkmap'), { force: true }).catch(() => {});
      const before = await snapshot(caseDir, new Set(['data', 'ts']));
      try {
        const prior = await loadPriorState(data);
        const diff = chunkDiff({ prior: prior.map, tablespaces: { existing: prior.tablespaces, mapping: tablespaceMapping } });
        const s = new RefreshDirectorySink({ prior, sync: false, tablespaceMapping });
        await runPipeline(Readable.from(backupEvents(nextSpec(rng, victims))), [diff], s);
      } finally {
        const after = await snapshot(caseDir, new Set(['data', 'ts']));
        for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
          if (before[k] !== after[k]) throw new AssertionError({ message: `refresh changed "${k}" outside the backup and its tablespace: ${before[k]} -> ${after[k]}` });
        }
      }
    } finally {
      await fs.rm(caseDir, { recursive: true, force: true });
    }
  },
  async teardown(ctx) {
    if (ctx) await fs.rm(ctx.root, { recursive: true, force: true });
  },
};
