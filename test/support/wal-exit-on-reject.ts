/**
 * A library user in a child process: a `-X stream` backup into a sink that
 * fails, and `process.exit()` the moment the pipeline rejects — no grace
 * for cleanup that is still under way.
 *
 *   node wal-exit-on-reject.js CONNJSON SPOOLDIR runPipeline|pipeline base|wal
 *
 * CONNJSON: the connection ({host, port, user}); SPOOLDIR: the source's
 * walSpool; the composition (pgbb's runPipeline, or node's own
 * stream/promises pipeline, which does not wait for stages to close); and
 * where the sink fails: at the first data of the base archive or of the
 * pg_wal archive (the spool then holds every segment). Exits 3 on the
 * expected rejection, 1 otherwise.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReplicationSource, runPipeline, type BackupEvent } from '../../src/index';

const [connJson, spoolDir, how, where] = process.argv.slice(2);
const source = new ReplicationSource({ connection: JSON.parse(connJson), checkpoint: 'fast', wal: 'stream', walSpool: spoolDir });
let archive = '';
const sink = new Writable({
  objectMode: true,
  write(ev: BackupEvent, _enc, cb) {
    if (ev.type === 'archive') archive = ev.kind;
    if (ev.type === 'data' && archive === where) return cb(new Error('sink failed'));
    cb();
  },
});
const run = how === 'pipeline' ? pipeline(source, sink) : runPipeline(source, [], sink);
run.then(
  () => process.exit(1),
  (err: Error) => process.exit(err.message === 'sink failed' ? 3 : 1),
);
