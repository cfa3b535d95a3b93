/**
 * Preloaded (`node -r`) into every pgbb the tests run (./pgbb.ts): each
 * recycled read slab (src/io/slab-pool.ts) is filled with 0xA5 before it is
 * read into again, so a stage that gave memory back too early, or still read
 * it afterwards, writes poison that pg_verifybackup, the manifest checks and
 * restored clusters catch. With PGBB_TEST_SLAB_LOG set, the number of slabs
 * recycled is appended to that file at exit (test/integration/slab-reads.test.ts).
 */
import { appendFileSync } from 'node:fs';
import { slabEvents } from '../../src/io/slab-pool';

let recycled = 0;
slabEvents.recycled = (slab) => {
  recycled++;
  new Uint8Array(slab).fill(0xa5);
};
const log = process.env.PGBB_TEST_SLAB_LOG;
if (log) process.on('exit', () => appendFileSync(log, `${recycled}\n`));
