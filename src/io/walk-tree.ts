/**
 * The one directory-tree walker: refresh's view of its target
 * (src/refresh/walk-target.ts), the plain backup source, and the fsync pass
 * (src/io/durable.ts syncTree) all walk through it, each with its own filter.
 *
 *   - lstat, never stat: a symbolic link is an entry of kind 'symlink', never
 *     followed, whatever it points at (a planted link leads nowhere);
 *   - nothing is opened: a FIFO, a socket or a device is an entry of kind
 *     'other', which callers skip or refuse;
 *   - names are read as bytes and carried as pgbb path strings
 *     (src/codec/path-bytes.ts), sorted by their bytes, so a name that is not
 *     UTF-8 is walked under its own bytes, in a stable order;
 *   - an async generator, depth first, pre-order: memory holds one name list
 *     per level of depth, not the tree; a directory is entered only after the
 *     consumer has taken its entry (and `descend` agreed), so a consumer may
 *     read a file before the walk goes on.
 *
 * Errors: IoError naming the directory that could not be read or the entry
 * that could not be lstat'ed.
 */
import { lstatSync, promises as fs, type BigIntStats, type Dirent } from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../errors';
import { fsPath, pathFromBytes, showPath } from '../codec/path-bytes';

export type TreeKind = 'file' | 'directory' | 'symlink' | 'other';

export interface TreeEntry {
  /** Path below the root, '/'-separated ('' never: the root itself is not an entry). */
  rel: string;
  /** Where it is on disk. */
  abs: string;
  kind: TreeKind;
  /** The entry's lstat (bigint: nanosecond times), unless the walk was asked not to stat. */
  stats?: BigIntStats;
}

export interface WalkOptions {
  /** lstat every entry (default true). Without it only `kind` is known (from readdir's d_type; lstat where the filesystem gives none). */
  stat?: boolean;
  /** Leaves an entry out (and, for a directory, everything below it). */
  skip?: (e: TreeEntry) => boolean;
  /** Whether to walk below a directory entry that was yielded (default: always). */
  descend?: (e: TreeEntry) => boolean;
}

function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): TreeKind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
}

/** readdir's d_type said nothing (some filesystems): lstat decides. */
function typeKnown(d: Dirent): boolean {
  return d.isFile() || d.isDirectory() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice();
}

/**
 * Synchronous: lstat is answered from the kernel's inode cache, and the
 * promise form allocates a request and a native stats array per entry that
 * wait for a full GC (a walk of many files grew with their count).
 */
function lstat(abs: string): BigIntStats {
  try {
    return lstatSync(fsPath(abs), { bigint: true });
  } catch (err) {
    throw ioError('could not stat', showPath(abs), err);
  }
}

async function list(dir: string): Promise<Dirent[]> {
  try {
    const ents = (await fs.readdir(fsPath(dir), { withFileTypes: true, encoding: 'buffer' })) as unknown as Dirent[];
    return ents.sort((a, b) => Buffer.compare(a.name as unknown as Buffer, b.name as unknown as Buffer));
  } catch (err) {
    throw ioError('could not read directory', showPath(dir), err);
  }
}

/** Every entry below `root` (which the caller has checked is a directory), depth first. */
export async function* walkTree(root: string, opts: WalkOptions = {}): AsyncGenerator<TreeEntry> {
  yield* below(root, '', opts);
}

async function* below(dir: string, prefix: string, opts: WalkOptions): AsyncGenerator<TreeEntry> {
  const withStats = opts.stat ?? true;
  for (const d of await list(dir)) {
    const name = pathFromBytes(d.name as unknown as Buffer);
    const abs = path.join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    const stats = withStats || !typeKnown(d) ? lstat(abs) : undefined;
    const e: TreeEntry = { rel, abs, kind: kindOf(stats ?? d), stats: withStats ? stats : undefined };
    if (opts.skip?.(e)) continue;
    yield e;
    if (e.kind === 'directory' && (opts.descend?.(e) ?? true)) yield* below(abs, rel, opts);
  }
}
