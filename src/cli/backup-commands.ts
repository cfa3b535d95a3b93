/**
 * The subcommands that take a backup from a running server: `backup`,
 * `refresh` (and `backup --incremental-from DIR`, the same refresh) and
 * `standby`. Each declares its flags, then maps them onto its command
 * (src/commands/*); the command's plan checks every value together.
 */
import type { Command } from 'commander';
import { encryptKeyFrom, parentKeyFrom, PASSPHRASE_ENV } from '../commands/encryption-options';
import { parseCompressSpec } from '../codec/compression';
import { UsageError } from '../errors';
import { createReporter } from '../report/reporters';
import { isS3Url } from '../s3/s3-url';
import { abortOnSignals, setActiveReporter } from './run-state';
import { backupOptions, backupSettings, parseJobs, parseTimeout } from './shared-options';
import type { BackupTarget } from '../pipeline/server-target';
import type { ChecksumAlgorithm } from '../codec/manifest-format';

// Each command's code is loaded by its action, not here: every run would
// otherwise compile all of pgbb (~250 modules) before it starts.
const backupCmd = () => import('../commands/backup');
const refreshCmd = () => import('../commands/refresh');
const serverTarget = () => import('../pipeline/server-target');

export function addBackupCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description('take a base backup of a running PostgreSQL server')
    .helpOption('-?, --help', 'show help')
    .option('-D, --pgdata <target>', 'directory to write the backup to, - for a tar stream on stdout, or s3://bucket/prefix')
    .option('-t, --target <target>', 'PostgreSQL 15+: server:/DIR (the server writes the backup there) or blackhole (it writes nothing); needs -X fetch or none')
    .option('-F, --format <format>', 'output format: plain (p) or tar (t); default plain, tar for -D -')
    .option('-Z, --compress <method>', 'compress: zstd[:LEVEL] or zstd:level=N,workers=N (tar output), server-zstd[:LEVEL] (the server compresses, PostgreSQL 15+), or none')
    .option('-z, --gzip', 'compress with gzip (as pg_basebackup -z): refused, pgbb compresses with zstd (-Z zstd)')
    .option('-R, --write-recovery-conf', 'write standby.signal and primary_conninfo (and primary_slot_name with -S) into the backup')
    .option('-C, --create-slot', 'create the replication slot named by -S before starting (dropped again if the backup fails)')
    .option('--manifest-checksums <algorithm>', 'checksum of each file in the manifest: NONE, CRC32C (default), SHA224, SHA256, SHA384 or SHA512')
    .option('--manifest-force-encode', 'hex encode all file names in the manifest')
    .option('--chunk-size <size>', 'chunk size of the chunk map a plain backup records, 64k to 1M (default 1M)')
    .option('--waldir <dir>', 'location for the write-ahead log directory (plain format; pg_wal becomes a link to it)')
    .option('--wal-spool <dir>', 'with -D -: where streamed WAL waits until the base backup is over (default: $TMPDIR or /var/tmp, on disk)')
    .option('--incremental-from <dir>', 'refresh this earlier plain backup in place, writing only what changed (-D must name it); with -D s3://…: latest, a backup id or s3://…/<id>, upload only what changed since it')
    .option('--max-chain <n>', 'with -D s3://… --incremental-from: most incrementals on top of a full backup (default 7)')
    .option('--full', 'with -D s3://…: take a full backup even when --incremental-from is given')
    .option('--s3-storage-class <class>', 'with -D s3://…: storage class of every object (STANDARD, STANDARD_IA, …)')
    .option('--s3-sse-kms-key-id <key>', 'with -D s3://…: encrypt objects server-side with this KMS key (SSE-KMS)')
    .option('--s3-part-size <size>', 'with -D s3://…: smallest upload part, 5M to 5G (default 8M; grown for large archives)')
    .option('-j, --jobs <n>', 'fetch files over N SQL sessions in parallel (pg_backup_start/pg_read_binary_file); default 1: BASE_BACKUP')
    .option('--local-pgdata <dir>', 'pgbb runs on the database host: read the files from this data directory (with -j N readers), the backup held over SQL')
    .option('--encrypt-passphrase-file <file>', `encrypt (age, scrypt) with the first line of this 0600 file; or set ${PASSPHRASE_ENV}`)
    .option('--encrypt-recipients-file <file>', 'encrypt (age) to the age1… recipients listed in this file')
    .option('--encrypt-identity-file <file>', 'with --encrypt-recipients-file and -D s3://… --incremental-from: an identity of those recipients, to read the parent\'s chunk map');
  backupOptions(backup, 'relocate tablespace in OLD to NEW (repeatable)');
  backup.action(async (opts) => {
    // With --json even a bad option value is reported as a JSON error line.
    if (opts.json) setActiveReporter(createReporter({ json: true, stream: process.stderr }));
    const target = opts.target === undefined ? null : (await serverTarget()).parseBackupTarget(String(opts.target));
    if (target) return runServerTarget(opts, target);
    // pg_basebackup's words.
    if (opts.pgdata === undefined) throw new UsageError('must specify output directory or backup target (-D DIR or -t TARGET)');
    const toS3 = isS3Url(String(opts.pgdata));
    const format = String(opts.format ?? (opts.pgdata === '-' || toS3 ? 'tar' : 'plain'));
    const fmt = format === 'p' || format === 'plain' ? 'plain' : format === 't' || format === 'tar' ? 'tar' : null;
    if (!fmt) throw new UsageError(`invalid output format "${format}", must be "plain" or "tar"`);
    if (!toS3 && (opts.maxChain !== undefined || opts.full)) throw new UsageError('--max-chain and --full need -D s3://…');
    if (!toS3 && (opts.s3StorageClass !== undefined || opts.s3SseKmsKeyId !== undefined || opts.s3PartSize !== undefined)) {
      throw new UsageError('--s3-storage-class, --s3-sse-kms-key-id and --s3-part-size need -D s3://…');
    }
    const encrypt = await encryptKeyFrom(opts);
    if (encrypt && opts.incrementalFrom !== undefined && !toS3) throw new UsageError('encryption is not possible with --incremental-from DIR (a refresh writes a plain backup)');
    const s3Incremental = toS3 && opts.incrementalFrom !== undefined && !opts.full;
    if (opts.encryptIdentityFile !== undefined && !(s3Incremental && encrypt)) throw new UsageError('--encrypt-identity-file on backup reads an encrypted parent: it needs -D s3://…, --incremental-from and --encrypt-recipients-file');
    const parentKey = s3Incremental && encrypt ? await parentKeyFrom(opts, encrypt) : undefined;
    if (opts.incrementalFrom !== undefined && !toS3) return runRefresh(opts, (await refreshCmd()).checkIncrementalFrom(String(opts.incrementalFrom), opts.pgdata, fmt));
    if (opts.gzip) throw new UsageError('-z/--gzip: pgbb does not write gzip; use -Z zstd[:LEVEL] (pgbb verify and restore read zstd)');
    const common = backupSettings(opts);
    const compress = opts.compress === undefined ? undefined : parseCompressSpec(String(opts.compress));
    const ac = abortOnSignals();
    const verbose = Boolean(opts.verbose);
    const { reporter } = common;
    const walSpool = opts.walSpool === undefined ? undefined : String(opts.walSpool);
    const s3 = toS3 ? await s3Settings(opts, parentKey) : undefined;
    const { backupCommand, backupSummary } = await backupCmd();
    const result = await backupCommand({
      ...common, target: opts.pgdata, format: fmt, compress, walSpool, s3, encrypt, signal: ac.signal,
      ...(opts.waldir !== undefined ? { walDirectory: String(opts.waldir) } : {}),
      writeRecoveryConf: Boolean(opts.writeRecoveryConf), createSlot: Boolean(opts.createSlot),
      manifestChecksums: opts.manifestChecksums, manifestForceEncode: Boolean(opts.manifestForceEncode),
      ...(opts.jobs !== undefined ? { jobs: parseJobs(String(opts.jobs)) } : {}),
      ...(opts.localPgdata !== undefined ? { localPgdata: String(opts.localPgdata) } : {}),
    });
    reporter.close();
    setActiveReporter(null);
    if (verbose) process.stderr.write(`${backupSummary(result)}\n`);
  });

  const refresh = program
    .command('refresh')
    .description('bring an existing plain backup up to date in place, writing only what changed')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <dir>', 'the plain backup to refresh')
    .option('--chunk-size <size>', 'chunk size, 64k to 1M (default: the backup\'s own, else 1M); a new size re-reads the backup once')
    .option('--no-incremental', 'never ask PostgreSQL 17+ for an INCREMENTAL backup: stream everything and compare here')
    .option('-j, --jobs <n>', 'N SQL sessions; the server compares SHA-256 of each chunk with the backup\'s and sends only those that differ');
  backupOptions(refresh, 'where to put tablespaces new since the backup (repeatable)');
  refresh.action(async (opts) => runRefresh(opts, opts.pgdata));

  const standby = program
    .command('standby')
    .description('make DATADIR a streaming standby of the server: backup, recovery settings, start, wait until it streams (resumable)')
    .helpOption('-?, --help', 'show help')
    .requiredOption('-D, --pgdata <datadir>', "the standby's data directory (missing, empty, or left by an earlier run)")
    .option('--create-slot <name>', 'create this physical replication slot on the primary (reused if it exists) and stream from it')
    .option('-o, --options <options>', 'options pg_ctl passes to postgres (e.g. "-p 5433")')
    .option('--pg-bin <dir>', 'directory of pg_ctl and postgres (default: PATH, pg_config --bindir, /usr/lib/postgresql/<major>/bin)')
    .option('--log-file <file>', 'server log for pg_ctl -l (default DATADIR/pgbb_standby.log)')
    .option('--rebuild', 're-seed an existing standby in place (stopping it first), writing only what differs')
    .option('--wait-timeout <seconds>', 'how long to wait for the standby to start and to stream', '300');
  backupOptions(standby, 'relocate tablespace in OLD to NEW (repeatable)');
  standby.action(async (opts) => {
    if (opts.json) setActiveReporter(createReporter({ json: true, stream: process.stderr }));
    if (!String(opts.walMethod).startsWith('s')) throw new UsageError('a standby needs its WAL streamed: -X stream');
    if (opts.slot === false) throw new UsageError('--no-slot: a standby streams through a slot only with -S or --create-slot; leave --no-slot out');
    const common = backupSettings(opts);
    const { standbyCommand, standbySummary } = await import('../commands/standby');
    const ac = abortOnSignals();
    const r = await standbyCommand({
      ...common,
      target: String(opts.pgdata),
      createSlot: opts.createSlot === undefined ? undefined : String(opts.createSlot),
      serverOptions: opts.options === undefined ? undefined : String(opts.options),
      pgBin: opts.pgBin === undefined ? undefined : String(opts.pgBin),
      logFile: opts.logFile === undefined ? undefined : String(opts.logFile),
      rebuild: Boolean(opts.rebuild),
      waitTimeout: parseTimeout(String(opts.waitTimeout)),
      json: Boolean(opts.json),
      signal: ac.signal,
    });
    common.reporter.close();
    setActiveReporter(null);
    if (!opts.json) process.stderr.write(`${standbySummary(r)}\n`);
  });
}

/** The S3 settings of `backup -D s3://…`. */
async function s3Settings(opts: Record<string, any>, parentKey: Awaited<ReturnType<typeof parentKeyFrom>> | undefined) {
  const { parsePartSize } = await import('../s3/object-writer');
  const { parseCount } = await import('../commands/expire');
  return {
    storageClass: opts.s3StorageClass as string | undefined,
    sseKmsKeyId: opts.s3SseKmsKeyId as string | undefined,
    ...(opts.s3PartSize !== undefined ? { partSize: parsePartSize(String(opts.s3PartSize)) } : {}),
    ...(opts.incrementalFrom !== undefined && !opts.full ? { incrementalFrom: String(opts.incrementalFrom) } : {}),
    ...(opts.maxChain !== undefined ? { maxChain: parseCount(String(opts.maxChain), '--max-chain') } : {}),
    ...(parentKey ? { parentKey } : {}),
  };
}

/**
 * `pgbb backup -t server:/DIR|blackhole`: pg_basebackup's rules for a
 * backup target, in its words, then the server-side backup
 * (src/pipeline/server-target.ts).
 */
async function runServerTarget(opts: Record<string, any>, target: BackupTarget): Promise<void> {
  if (opts.pgdata !== undefined) throw new UsageError('cannot specify both output directory and backup target');
  if (opts.format !== undefined) throw new UsageError('cannot specify both format and backup target');
  const compress = opts.compress === undefined ? undefined : parseCompressSpec(String(opts.compress));
  if (opts.gzip || (compress && compress.method !== 'none' && !compress.server)) {
    throw new UsageError('client-side compression is not possible when a backup target is specified (the server compresses: -Z server-zstd[:LEVEL])');
  }
  if (!String(opts.walMethod).startsWith('f') && !String(opts.walMethod).startsWith('n')) {
    throw new UsageError('WAL cannot be streamed when a backup target is specified: use -X fetch or -X none');
  }
  if (opts.writeRecoveryConf) throw new UsageError('recovery configuration cannot be written when a backup target is used');
  if (opts.waldir !== undefined) throw new UsageError('WAL directory location cannot be specified along with a backup target');
  const clientOnly: [string, boolean][] = [
    ['-T/--tablespace-mapping', Object.keys(opts.tablespaceMapping ?? {}).length > 0],
    ['-C/--create-slot', Boolean(opts.createSlot)],
    ['-j/--jobs', opts.jobs !== undefined],
    ['--local-pgdata', opts.localPgdata !== undefined],
    ['--incremental-from DIR', opts.incrementalFrom !== undefined],
    ['--wal-spool', opts.walSpool !== undefined],
    ['--chunk-size', opts.chunkSize !== undefined],
    ['encryption', opts.encryptPassphraseFile !== undefined || opts.encryptRecipientsFile !== undefined || process.env[PASSPHRASE_ENV] !== undefined],
  ];
  for (const [flag, given] of clientOnly) if (given) throw new UsageError(`${flag} is not possible with a backup target (the server writes the backup, pgbb receives none of it)`);
  const common = backupSettings(opts);
  const { reporter } = common;
  const { describeTarget, serverTargetBackup } = await serverTarget();
  const ac = abortOnSignals();
  const r = await serverTargetBackup({
    connection: common.connection,
    target,
    wal: common.wal === 'fetch' ? 'fetch' : 'none',
    checkpoint: common.checkpoint,
    label: common.label,
    progress: common.progress,
    ...(common.maxRate !== undefined ? { maxRate: common.maxRate } : {}),
    manifest: common.manifest,
    ...(opts.manifestChecksums !== undefined ? { manifestChecksums: String(opts.manifestChecksums).toUpperCase() as ChecksumAlgorithm } : {}),
    manifestForceEncode: Boolean(opts.manifestForceEncode),
    verifyChecksums: common.verifyChecksums,
    ...(compress?.method === 'zstd' && compress.server ? { serverCompress: { level: compress.level ?? 3, ...(compress.workers !== undefined ? { workers: compress.workers } : {}) } } : {}),
    timeout: common.timeout,
    reporter,
    signal: ac.signal,
  });
  reporter.result({
    startLsn: r.start.startLsn,
    endLsn: r.end.endLsn,
    timeline: r.end.timeline,
    bytes: r.bytes,
    files: 0,
    seconds: r.seconds,
    checkpointSeconds: r.checkpointSeconds,
    target: describeTarget(target),
    format: 'tar',
    compression: compress?.method === 'zstd' ? `server-zstd:${compress.level ?? 3}` : 'none',
  });
  reporter.close();
  setActiveReporter(null);
  if (opts.verbose) {
    process.stderr.write(`pgbb: backup written by the server to ${describeTarget(target)}: ${r.archives.map((a) => `${a}.tar`).join(', ')}; start ${r.start.startLsn} end ${r.end.endLsn} on timeline ${r.end.timeline}\n`);
  }
}

/** `pgbb refresh` and `pgbb backup --incremental-from`: the options they share with backup, then the refresh. */
async function runRefresh(opts: Record<string, any>, target: string): Promise<void> {
  const common = backupSettings(opts);
  const { reporter } = common;
  const json = Boolean(opts.json);
  const { refreshCommand, refreshResultJson, refreshSummary } = await refreshCmd();
  const ac = abortOnSignals();
  const r = await refreshCommand({
    ...common,
    target,
    incremental: opts.incremental === false ? 'off' : 'auto',
    ...(opts.jobs !== undefined ? { jobs: parseJobs(String(opts.jobs)) } : {}),
    signal: ac.signal,
  });
  if (json) process.stderr.write(`${refreshResultJson(r)}\n`);
  else reporter.result({ startLsn: r.start.startLsn, endLsn: r.end.endLsn, timeline: r.end.timeline, bytes: r.bytesWritten, files: r.filesAdded + r.filesChanged, seconds: r.seconds });
  reporter.close();
  setActiveReporter(null);
  // What a DBA wants to know after every refresh, -v or not: what it wrote of what, and what crossed the network.
  if (!json) process.stderr.write(`${refreshSummary(r)}\n`);
}
