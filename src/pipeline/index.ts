/**
 * The pipeline builder: one way to compose source → observers → sink
 * (compose), and on it each command's pipeline, settled from its options
 * once (backup, refresh, restore, verify). src/commands/* map the CLI's
 * options onto these; a script calls them directly (src/index.ts).
 */
export { runPipeline } from './run-pipeline';
export { compose, type Composition } from './compose';
export { settleBackup, DEFAULT_TIMEOUT_MS, type BackupOptions, type BackupPlan, type SinkKind } from './backup-plan';
export { settleRefresh, checkIncrementalFrom, type RefreshOptions, type RefreshPlan } from './refresh-plan';
export { backup, backupSink, type BackupResult } from './backup';
export { refresh, type RefreshResult } from './refresh';
export { restore, type RestoreOptions, type RestoreResult } from './restore';
export { verify, type VerifyOptions, type VerifyReport } from './verify';
export { newTally, tallyStage, type Tally } from './observers';
