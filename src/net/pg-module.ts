/**
 * `pg`, loaded on first connection: requiring it took ~80 ms at every start
 * (its lib/stream.js probes for Cloudflare Workers with `new Response()`,
 * which makes Node load its bundled undici), also for commands that never
 * connect (--help, verify, restore, list).
 */
import type * as Pg from 'pg';

let pg: typeof Pg | null = null;

export function pgClient(): typeof Pg.Client {
  return (pg ??= require('pg') as typeof Pg).Client;
}
