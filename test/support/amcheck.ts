/**
 * amcheck on a (restored) server: bt_index_check with heapallindexed on the
 * btree indexes whose names match `like`; an inconsistent index makes the
 * query fail. Returns the names of the indexes checked, sorted.
 */
import type { Cluster } from './cluster';

export async function btreeCheck(c: Cluster, like: string): Promise<string[]> {
  await c.query('CREATE EXTENSION IF NOT EXISTS amcheck');
  const checked = await c.query<{ relname: string }>(`
    SELECT c.relname, bt_index_check(c.oid, true)
      FROM pg_class c JOIN pg_am am ON am.oid = c.relam
     WHERE am.amname = 'btree' AND c.relkind = 'i' AND c.relpersistence = 'p' AND c.relname LIKE '${like.replace(/'/g, "''")}'`);
  return checked.map((x) => x.relname).sort();
}
