/**
 * Sample data for tests and the demo, and a fingerprint of it to prove that a
 * restored copy holds the same data as the server it was backed up from.
 *
 * fillSampleData puts data where a base backup has to look for it:
 *   - pgbench tables in database `postgres` (scale × 100,000 accounts, ~16 MB each)
 *   - tablespace `pgbb_ts` (a makeDir() location, so it travels as a
 *     separate tar/pg_tblspc entry) holding table `pgbb_ts_rows` and its index
 *   - one large object of ~640 kB (hundreds of pg_largeobject pages)
 *
 * dataFingerprint returns `key=value` lines, the same on any copy with the
 * same data regardless of where it lives or which port it runs on. It reads
 * every row (hashtext over whole rows), so a missing or torn page surfaces
 * as a different fingerprint or a query error.
 *
 * Errors: query errors from the server propagate unchanged.
 */

import type { Cluster } from './cluster';

export interface SampleDataOptions {
  /** pgbench -i scale. Default 1. */
  scale?: number;
  /** Create the tablespace and its table. Default true. */
  tablespace?: boolean;
}

export const SAMPLE_TABLESPACE = 'pgbb_ts';
export const SAMPLE_TABLE = 'pgbb_ts_rows';
const TABLE_ROWS = 20_000;

export async function fillSampleData(c: Cluster, opts: SampleDataOptions = {}): Promise<void> {
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`fillSampleData: scale must be a positive integer, got ${scale}`);
  await c.pgbench(['-i', '-q', '-s', String(scale), 'postgres']);

  if (opts.tablespace ?? true) {
    const location = await c.makeDir(`tablespace-${SAMPLE_TABLESPACE}`);
    // CREATE TABLESPACE refuses to run in a transaction block, so one statement per query.
    await c.query(`CREATE TABLESPACE ${SAMPLE_TABLESPACE} LOCATION '${location.replace(/'/g, "''")}'`);
    await c.query(
      `CREATE TABLE ${SAMPLE_TABLE} (id int PRIMARY KEY USING INDEX TABLESPACE ${SAMPLE_TABLESPACE}, payload text NOT NULL) ` +
        `TABLESPACE ${SAMPLE_TABLESPACE}`,
    );
    // Widths vary (32 to 231 bytes) so pages fill unevenly, as real tables do.
    await c.query(
      `INSERT INTO ${SAMPLE_TABLE} SELECT i, md5(i::text) || repeat('x', i % 200) FROM generate_series(1, ${TABLE_ROWS}) i`,
    );
  }

  await c.query(
    `SELECT lo_from_bytea(0, convert_to(string_agg(md5(i::text), '' ORDER BY i), 'UTF8')) FROM generate_series(1, 20000) i`,
  );
}

export async function dataFingerprint(c: Cluster): Promise<string> {
  const out: Array<[string, unknown]> = [];
  const [pgbench] = await c.query(`
    SELECT (SELECT count(*) FROM pgbench_branches) AS branches,
           (SELECT count(*) FROM pgbench_tellers) AS tellers,
           (SELECT count(*) FROM pgbench_history) AS history,
           count(*) AS accounts,
           sum(abalance) AS abalance,
           sum(hashtext(a::text)::bigint) AS accounts_hash
      FROM pgbench_accounts a`);
  for (const [k, v] of Object.entries(pgbench)) out.push([k, v]);

  const [ts] = await c.query(`
    SELECT coalesce(string_agg(spcname, ',' ORDER BY spcname), '') AS tablespaces
      FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')`);
  out.push(['tablespaces', ts.tablespaces]);

  const [exists] = await c.query(`SELECT to_regclass('public.${SAMPLE_TABLE}') IS NOT NULL AS present`);
  if (exists.present) {
    const [t] = await c.query(`
      SELECT count(*) AS rows,
             md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS md5,
             (SELECT coalesce(t.spcname, 'pg_default') FROM pg_class r LEFT JOIN pg_tablespace t ON t.oid = r.reltablespace
               WHERE r.oid = 'public.${SAMPLE_TABLE}'::regclass) AS lives_in
        FROM public.${SAMPLE_TABLE}`);
    out.push([`${SAMPLE_TABLE}.rows`, t.rows], [`${SAMPLE_TABLE}.md5`, t.md5], [`${SAMPLE_TABLE}.tablespace`, t.lives_in]);
  }

  const [lo] = await c.query(`
    SELECT count(*) AS n, coalesce(md5(string_agg(md5(lo_get(oid)), ',' ORDER BY oid)), '') AS md5
      FROM pg_largeobject_metadata`);
  out.push(['large_objects', lo.n], ['large_objects.md5', lo.md5]);

  return out.map(([k, v]) => `${k}=${v}`).join('\n');
}
