/**
 * `pg`, loaded on first connection: requiring it took ~80 ms at every start,
 * also for commands that never connect (--help, verify, restore, list).
 *
 * Most of that was pg's lib/stream.js asking, as it loads, whether it runs in
 * Cloudflare Workers: without a global `navigator` (Node 20; Node 21+ has one)
 * it builds a `new Response()`, which makes Node load its bundled undici —
 * ~27 ms of every backup's start, for an HTTP client pgbb never uses there.
 * So while pg loads, Node 20 gets the `navigator` newer Node has (its
 * userAgent "Node.js/…"), and loses it again before anything else runs.
 */
import type * as Pg from 'pg';

let pg: typeof Pg | null = null;

export function pgClient(): typeof Pg.Client {
  return (pg ??= loadPg()).Client;
}

function loadPg(): typeof Pg {
  if ('navigator' in globalThis) return require('pg') as typeof Pg;
  Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node}` }, configurable: true, writable: true });
  try {
    return require('pg') as typeof Pg;
  } finally {
    delete (globalThis as { navigator?: unknown }).navigator;
  }
}
