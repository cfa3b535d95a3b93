/**
 * How long a replication connection waits for the server by default: the
 * connect timeout (unless the conninfo sets connect_timeout) and the longest
 * silence while data is due. Milliseconds; 0 waits forever. One value for
 * every connection pgbb opens (the backup's, refresh's server check).
 */
export const DEFAULT_TIMEOUT_MS = 60_000;
