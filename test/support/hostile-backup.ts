/**
 * Crafted backups for the restore safety tests, and a way to prove that a
 * run changed nothing it should not have.
 *
 *   completeBackup(opts)       synthetic-backup's events minus its extra link
 *                              (a restore refuses links outside pg_tblspc),
 *                              with members added, dropped or re-moded
 *   streamOf(events, opts)     those events as the tar stream `pgbb backup -D -`
 *                              writes (manifest built over them unless told not)
 *   snapshotTree(root, skip)   every entry below root: type, mode, and the
 *                              content's SHA-256 or the link's target; `skip`
 *                              names absolute paths left out (the target, the
 *                              declared tablespace locations)
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent, EntryEvent } from '../../src/events';
import { fsPath, pathFromBytes } from '../../src/codec/path-bytes';
import { manifestBuild } from '../../transforms/manifest-build';
import { StdoutSink } from '../../sinks/stdout';
import { sampleEvents } from './synthetic-backup';

export interface CompleteBackupOptions {
  /** The tablespace's recorded location (synthetic-backup's default otherwise). */
  tablespace?: string;
  /** Base members (files without data, directories, links) dropped, by path. */
  drop?: string[];
  /** Events added at the end of base. */
  extra?: BackupEvent[];
  /** A new mode for an entry, or undefined to keep it. */
  mode?: (entry: EntryEvent) => number | undefined;
}

export function completeBackup(opts: CompleteBackupOptions = {}): BackupEvent[] {
  const drop = new Set(['link-to-long-target', ...(opts.drop ?? [])]);
  const out: BackupEvent[] = [];
  let archive = '';
  let dropping = false;
  for (const ev of sampleEvents({ tablespace: opts.tablespace })) {
    if (ev.type === 'archive') archive = ev.kind;
    if (ev.type === 'entry') dropping = archive === 'base' && drop.has(ev.path);
    if (dropping) {
      if (ev.type === 'entry-end') dropping = false;
      continue;
    }
    if (ev.type === 'archive-end' && archive === 'base') out.push(...(opts.extra ?? []));
    if (ev.type === 'entry' && opts.mode) out.push({ ...ev, mode: opts.mode(ev) ?? ev.mode });
    else out.push(ev);
  }
  return out;
}

export async function streamOf(events: BackupEvent[], opts: { manifest?: boolean } = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const output = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(Buffer.from(c)), cb()) });
  const stages: Transform[] = opts.manifest === false ? [] : [manifestBuild()];
  await pipeline([Readable.from(events, { objectMode: true }), ...stages, new StdoutSink({ output })]);
  return Buffer.concat(chunks);
}

export async function snapshotTree(root: string, skip: string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    // Names as bytes (src/codec/path-bytes.ts): a restored non-UTF-8 name is walked too.
    for (const name of (await fs.readdir(fsPath(dir), { encoding: 'buffer' })).map((b) => pathFromBytes(b)).sort()) {
      const p = join(dir, name);
      if (skip.includes(p)) continue;
      const st = await fs.lstat(fsPath(p));
      const mode = (st.mode & 0o7777).toString(8);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.set(rel, `link ${mode} ${await fs.readlink(fsPath(p))}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        await walk(p);
      } else if (st.isFile()) out.set(rel, `file ${mode} ${createHash('sha256').update(await fs.readFile(fsPath(p))).digest('hex')}`);
      else out.set(rel, `other ${mode}`);
    }
  };
  await walk(root);
  return out;
}
