import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Transform, Writable } from 'node:stream';
import { compose } from '../../../src/pipeline/compose';
import type { BackupSink, WalPlace } from '../../../src/sink';
import type { BackupEvent } from '../../../src/events';
import { sampleEvents } from '../../support/synthetic-backup';

/** A BackupSink that logs what happens to it. */
function recordingSink(log: string[], opts: { place?: WalPlace | null; refuse?: Error } = {}): BackupSink & { got: BackupEvent[] } {
  const got: BackupEvent[] = [];
  const sink = new Writable({
    objectMode: true,
    write(ev: BackupEvent, _e, cb) {
      got.push(ev);
      cb();
    },
    destroy(err, cb) {
      log.push('destroyed');
      setTimeout(() => (log.push('cleaned up'), cb(err)), 20);
    },
  });
  return Object.assign(sink, {
    got,
    ready: async () => {
      log.push('ready');
      if (opts.refuse) throw opts.refuse;
    },
    walPlace: () => (log.push('walPlace'), opts.place ?? null),
  });
}

test('the sink is readied and asked where WAL goes before the source is built; events flow through the observers', async () => {
  const log: string[] = [];
  const sink = recordingSink(log, { place: { walDir: '/t/pg_wal' } });
  let seen = 0;
  const observer = new Transform({ objectMode: true, transform: (ev, _e, cb) => (seen++, cb(null, ev)) });
  const events = sampleEvents();
  await compose({
    sink,
    source: (place) => {
      log.push(`source ${JSON.stringify(place)}`);
      return Readable.from(events, { objectMode: true });
    },
    observers: [observer],
  });
  // (A finished stream is destroyed too: autoDestroy.)
  assert.deepEqual(log.slice(0, 3), ['ready', 'walPlace', 'source {"walDir":"/t/pg_wal"}']);
  assert.equal(seen, events.length);
  assert.equal(sink.got.length, events.length);
});

test('a sink that refuses its target: the source is never built, and compose rejects once the sink has cleaned up', async () => {
  const log: string[] = [];
  const refused = new Error('directory "/t" exists but is not empty');
  const sink = recordingSink(log, { refuse: refused });
  await assert.rejects(
    compose({ sink, source: () => (log.push('source'), Readable.from([])) }),
    (e) => e === refused,
  );
  assert.deepEqual(log, ['ready', 'destroyed', 'cleaned up']);
});

test('a source that cannot be built (a backup that does not open): the sink removes what it made before compose rejects', async () => {
  const log: string[] = [];
  const sink = recordingSink(log);
  await assert.rejects(
    compose({ sink, source: async () => { throw new Error('no backup_label'); } }),
    /no backup_label/,
  );
  assert.deepEqual(log, ['ready', 'walPlace', 'destroyed', 'cleaned up']);
});

test('a plain Writable is no BackupSink: nothing to ready, the source chooses where WAL goes', async () => {
  let place: WalPlace | null | undefined;
  const sink = new Writable({ objectMode: true, write: (_ev, _e, cb) => cb() });
  Object.assign(sink, { ready: () => assert.fail('ready() alone does not make a BackupSink') });
  await compose({ sink, source: (p) => ((place = p), Readable.from(sampleEvents(), { objectMode: true })) });
  assert.equal(place, null);
});

test('a source, sink or observer used before is refused with a usage error naming it, before the sink is readied', async () => {
  const used = Readable.from(sampleEvents(), { objectMode: true });
  await compose({ sink: new Writable({ objectMode: true, write: (_ev, _e, cb) => cb() }), source: used });
  const log: string[] = [];
  await assert.rejects(compose({ sink: recordingSink(log), source: used }), /^UsageError: compose: the source \(Readable\) was already used; a source gives one backup, make a new one$/);
  const destroyed = Readable.from(sampleEvents(), { objectMode: true });
  destroyed.destroy();
  await assert.rejects(compose({ sink: recordingSink(log), source: destroyed }), /the source \(Readable\) was already used/);
  assert.deepEqual(log, [], 'no sink was readied');
  // Built by a factory: the sink it was readied for is cleaned up.
  await assert.rejects(compose({ sink: recordingSink(log), source: () => used }), /the source \(Readable\) was already used/);
  assert.deepEqual(log, ['ready', 'walPlace', 'destroyed', 'cleaned up']);

  const sink = recordingSink([]);
  await compose({ sink, source: Readable.from(sampleEvents(), { objectMode: true }) });
  await assert.rejects(compose({ sink, source: Readable.from(sampleEvents(), { objectMode: true }) }), /^UsageError: compose: the sink \(Writable\) was already used; a sink takes one backup, make a new one$/);

  const observer = new Transform({ objectMode: true, transform: (ev, _e, cb) => cb(null, ev) });
  await compose({ sink: recordingSink([]), source: Readable.from(sampleEvents(), { objectMode: true }), observers: [observer] });
  await assert.rejects(
    compose({ sink: recordingSink([]), source: Readable.from(sampleEvents(), { objectMode: true }), observers: [observer] }),
    /^UsageError: compose: an observer \(Transform\) was already used; a stage runs in one pipeline, make a new one$/,
  );
});

test('a sink that refuses its target, with the source given as a stream: the source is destroyed too (it may be connecting), before compose rejects', async () => {
  const log: string[] = [];
  const refused = new Error('target not empty');
  const source = new Readable({
    objectMode: true,
    read() {},
    destroy(err, cb) {
      log.push('source destroyed');
      setTimeout(() => (log.push('source closed'), cb(err)), 20);
    },
  });
  await assert.rejects(compose({ sink: recordingSink(log, { refuse: refused }), source }), /target not empty/);
  assert.ok(source.destroyed);
  assert.deepEqual(log.filter((l) => l.startsWith('source')), ['source destroyed', 'source closed']);
});

test('an observer or a sink that throws inside its own _transform/_write (not through the callback) fails the pipeline with its error, wherever the event came from', async () => {
  for (const where of ['observer', 'sink'] as const) {
    const log: string[] = [];
    let n = 0;
    const broke = () => {
      if (++n === 5) throw new Error(`${where} broke`);
    };
    const observer = new Transform({ objectMode: true, transform: (ev, _e, cb) => (where === 'observer' && broke(), cb(null, ev)) });
    const sink = recordingSink(log);
    if (where === 'sink') {
      const write = sink._write.bind(sink);
      sink._write = (ev, enc, cb) => (broke(), write(ev, enc, cb));
    }
    // Readable.from pushes from Node's own flow(): no pgbb code is on the stack to catch a throw.
    await assert.rejects(compose({ sink, source: Readable.from(sampleEvents(), { objectMode: true }), observers: [observer] }), new RegExp(`${where} broke`));
    assert.ok(log.includes('cleaned up'), `${where}: the sink cleaned up first`);
  }
});
