/**
 * The modes a data directory is written with, whatever an archive says: an
 * archive's 04755 must not become a setuid file, nor a 0666 a file others
 * can rewrite.
 *
 * As PostgreSQL (src/common/file_perm.c, SetDataDirectoryCreatePerm): a
 * cluster is either owner-only (directories 0700, files 0600) or
 * group-readable (0750 / 0640), never anything else. pg_basebackup asks the
 * server for data_directory_mode; a member stream does not carry it, so the
 * first directory or file member decides, once, the way
 * SetDataDirectoryCreatePerm decides from a directory's mode: a directory
 * with group r-x (mode & 0750 == 0750), a file with group r (mode & 0640 ==
 * 0640). The cluster's own members all follow one mode (the server creates
 * them with it), and so does everything pgbb adds (backup_manifest, the chunk
 * map, WAL). Member modes are otherwise ignored: no setuid, setgid or sticky
 * bit, no write for group or others, ever.
 */
import type { EntryKind } from '../src/events';

export interface DataModes {
  dir: number;
  file: number;
  groupReadable: boolean;
}

export const OWNER_ONLY: DataModes = { dir: 0o700, file: 0o600, groupReadable: false };
export const GROUP_READABLE: DataModes = { dir: 0o750, file: 0o640, groupReadable: true };
/** A file holding a password: owner-only in every cluster. */
export const SECRET_FILE_MODE = 0o600;

/** The cluster's modes, judged from the mode of its first directory or file member. */
export function modesFromMember(kind: EntryKind, mode: number): DataModes {
  const group = kind === 'directory' ? (mode & 0o750) === 0o750 : (mode & 0o640) === 0o640;
  return group ? GROUP_READABLE : OWNER_ONLY;
}
