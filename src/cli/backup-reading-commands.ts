/**
 * The subcommands that read a backup pgbb wrote: `restore` and `verify`
 * (a directory, tar files, a tar stream on stdin, or s3://), and, for an S3
 * repository, `list` and `expire`.
 */
import type { Command } from 'commander';
import { decryptKeyFrom, PASSPHRASE_ENV } from '../commands/encryption-options';
import { parseTablespaceMapping } from '../commands/options';
import { showPath } from '../codec/path-bytes';
import { UsageError } from '../errors';
import { abortOnSignals } from './run-state';
import { s3SourceOptions } from './shared-options';

/** verify --objects-only: no other check applies, so any other check's option is refused rather than ignored. */
async function verifyObjectsOnly(source: string, opts: Record<string, any>): Promise<void> {
  const others = [
    ['-i', opts.ignore?.length], ['-m', opts.manifestPath], ['-s', opts.skipChecksums], ['-w', opts.walDirectory], ['-e', opts.exitOnError],
    ['-P', opts.progress], ['-n', opts.parseWal === false], ['-k', opts.verifyChecksums === false], ['--encrypt-passphrase-file', opts.encryptPassphraseFile], ['--encrypt-identity-file', opts.encryptIdentityFile],
  ].filter(([, given]) => given);
  if (others.length) throw new UsageError(`--objects-only reads no file of the backup: ${others.map(([o]) => o).join(', ')} cannot go with it`);
  const s3 = s3SourceOptions(source, opts);
  if (!s3) throw new UsageError('--objects-only is only for s3:// sources');
  const { verifyStoredCommand, verifyFailure, verifyStoredSummary } = await import('../commands/verify');
  const ac = abortOnSignals();
  const r = await verifyStoredCommand(source, { ...s3, signal: ac.signal });
  if (r.problems.length) {
    for (const p of r.problems) process.stderr.write(`pgbb: ${p}\n`);
    throw verifyFailure(source, { problemCount: r.problems.length });
  }
  if (!opts.quiet) process.stdout.write(`${verifyStoredSummary(r)}\n`);
}

export function addReadingCommands(program: Command): void {
  const restore = program
    .command('restore')
    .description('restore a backup pgbb wrote (plain, tar, or - for a tar stream on stdin) into a new data directory')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .requiredOption('-D, --pgdata <datadir>', 'data directory to create (must be missing or empty)')
    .option('-T, --tablespace-mapping <OLD=NEW>', 'relocate tablespace in OLD to NEW (repeatable)', (v, acc: Record<string, string>) => parseTablespaceMapping(v, acc), {})
    .option('--tablespaces-at-recorded-locations', 'restore tablespaces -T does not map at the locations the backup records (else refused)')
    .option('--no-manifest', 'restore a backup that has no backup_manifest (its files are then not checked)')
    .option('--allow-incomplete', 'with s3://…/<id>: read a backup that has no backup.json (an unfinished upload)')
    .option('--encrypt-passphrase-file <file>', `decrypt with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-identity-file <file>', 'decrypt with the AGE-SECRET-KEY-1… identities in this 0600 file')
    .option('-R, --write-recovery-conf', 'write standby.signal (and primary_conninfo with --primary-conninfo)')
    .option('--primary-conninfo <conninfo>', 'connection string the standby streams from (with -R)')
    .option('-S, --slot <name>', 'primary_slot_name for the standby (with -R)')
    .option('-N, --no-sync', 'do not wait for changes to be written safely to disk')
    .option('-v, --verbose', 'output verbose messages');
  restore.action(async (source: string, opts) => {
    if (!opts.writeRecoveryConf && (opts.primaryConninfo !== undefined || opts.slot !== undefined)) {
      throw new UsageError('--primary-conninfo and -S need -R');
    }
    const decrypt = await decryptKeyFrom(opts);
    const { restoreCommand, restoreSummary } = await import('../commands/restore');
    const ac = abortOnSignals();
    const r = await restoreCommand({
      source,
      decrypt,
      target: opts.pgdata,
      tablespaceMapping: opts.tablespaceMapping,
      sync: opts.sync,
      tablespacesAtRecordedLocations: Boolean(opts.tablespacesAtRecordedLocations),
      noManifest: opts.manifest === false,
      // Named before anything is written there: the user accepted the backup's word for these.
      onTablespace: (p) => {
        if (!p.mapped) process.stderr.write(`pgbb: restoring tablespace ${p.oid} at its recorded location "${showPath(p.dir)}"\n`);
      },
      standby: opts.writeRecoveryConf ? { primaryConninfo: opts.primaryConninfo, slot: opts.slot } : undefined,
      s3: s3SourceOptions(source, opts),
      signal: ac.signal,
    });
    if (!r.manifestChecked) process.stderr.write('pgbb: warning: the backup has no backup_manifest: files were not checked\n');
    if (opts.verbose) process.stderr.write(`${restoreSummary(r)}\n`);
  });

  program
    .command('verify')
    .description('check a backup: files against the manifest, page checksums, and the WAL it needs')
    .helpOption('-?, --help', 'show help')
    .argument('<source>', 'backup directory, or - to read a tar stream from stdin')
    .option('-n, --no-parse-wal', 'do not check the WAL (backups taken with -X none)')
    .option('-k, --no-verify-checksums', 'do not check page checksums')
    .option('-q, --quiet', 'print nothing when the backup is good')
    .option('-e, --exit-on-error', 'stop at the first problem found')
    .option('-i, --ignore <path>', 'leave this path (and what is below it) out of the manifest check (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('-m, --manifest-path <path>', 'check against this backup_manifest instead of the backup\'s own')
    .option('-s, --skip-checksums', 'compare sizes against the manifest, not checksums')
    .option('-w, --wal-directory <dir>', 'check the WAL in this directory instead of the backup\'s')
    .option('-P, --progress', 'show progress on stderr')
    .option('--allow-incomplete', 'with s3://…/<id>: read a backup that has no backup.json (an unfinished upload)')
    .option('--objects-only', 'with s3://: check each object\'s size and stored CRC32C against the record, without downloading')
    .option('--encrypt-passphrase-file <file>', `decrypt with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-identity-file <file>', 'decrypt with the AGE-SECRET-KEY-1… identities in this 0600 file')
    .action(async (source: string, opts) => {
      if (opts.objectsOnly) return verifyObjectsOnly(source, opts);
      const decrypt = await decryptKeyFrom(opts);
      const { verifyCommand, verifyFailure, verifyProgress, verifySummary } = await import('../commands/verify');
      const ac = abortOnSignals();
      const r = await verifyCommand({
        source, decrypt, checkWal: opts.parseWal, checkPages: opts.verifyChecksums, s3: s3SourceOptions(source, opts), signal: ac.signal,
        ignore: opts.ignore, manifestPath: opts.manifestPath, skipChecksums: Boolean(opts.skipChecksums), walDirectory: opts.walDirectory,
        exitOnError: Boolean(opts.exitOnError), onProgress: opts.progress ? verifyProgress() : undefined,
      });
      if (!r.ok) {
        for (const p of r.problems) process.stderr.write(`pgbb: ${p}\n`);
        throw verifyFailure(source, r);
      }
      if (!opts.quiet) {
        process.stdout.write(`${verifySummary(r, Boolean(opts.parseWal), Boolean(opts.ignore?.length))}\n`);
      }
    });

  program
    .command('list')
    .description('list the backups in s3://bucket/prefix (newest last)')
    .helpOption('-?, --help', 'show help')
    .argument('<repository>', 's3://bucket/prefix')
    .option('--json', 'one JSON object per line, one per backup')
    .action(async (repo: string, opts) => {
      const { listCommand, listJson, listTable } = await import('../commands/list');
      const rows = await listCommand({ repository: repo });
      process.stdout.write(opts.json ? listJson(rows) : listTable(rows));
    });

  program
    .command('expire')
    .description('remove old backups from s3://bucket/prefix, keeping what the retention asks for')
    .helpOption('-?, --help', 'show help')
    .argument('<repository>', 's3://bucket/prefix')
    .option('--retain-full <n>', 'keep the newest N complete full backups')
    .option('--retain-days <d>', 'keep complete backups younger than D days')
    .option('--grace-hours <h>', 'remove incomplete backups only once they are this old (default 24)', '24')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'one JSON object per line, one per backup removed (or to be removed)')
    .action(async (repo: string, opts) => {
      const { expireCommand, expireReport, parseAmount, parseCount } = await import('../commands/expire');
      const r = await expireCommand({
        repository: repo,
        retainFull: opts.retainFull === undefined ? undefined : parseCount(String(opts.retainFull), '--retain-full'),
        retainDays: opts.retainDays === undefined ? undefined : parseAmount(String(opts.retainDays), '--retain-days'),
        graceHours: parseAmount(String(opts.graceHours), '--grace-hours'),
        dryRun: Boolean(opts.dryRun),
      });
      process.stdout.write(expireReport(r, Boolean(opts.json)));
    });
}
