/**
 * pgbb's library API: sources, transforms, sinks, events and errors.
 * Compose them with `stream.pipeline`.
 */
export * from './events';
export * from './errors';
export { ReplicationSource, type ReplicationSourceOptions } from './sources/replication-source';
export { ReplicationConnection } from './replication-connection';
export { clientConfig, type ConnectionOptions } from './conninfo';
export { parseLsn, formatLsn, walFileName } from './lsn';
export { runPipeline } from './pipeline';
export { DirectorySink, directorySink, type DirectorySinkOptions } from '../sinks/directory';
export { TarFilesSink, tarFilesSink, type TarFilesSinkOptions } from '../sinks/tar-files';
export { StdoutSink, stdoutSink, type StdoutSinkOptions } from '../sinks/stdout';
export { tap } from '../transforms/tap';
