/**
 * StreamedWalSource (src/sources/streamed-wal-source.ts) around a stand-in
 * live source: without a WAL plan the events pass unchanged and in order, at
 * the consumer's pace; destroying the wrapper destroys the source; the
 * source's failure is the wrapper's. (With a plan it needs a server: see
 * test/src/sources/replication-source.test.ts and test/integration/wal-*.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamedWalSource } from '../../../src/sources/streamed-wal-source';
import type { LiveSourceHooks } from '../../../src/sources/live-source';
import type { BackupEvent } from '../../../src/events';

function events(n: number): BackupEvent[] {
  const out: BackupEvent[] = [{ type: 'archive', kind: 'base', name: 'base', location: '' }];
  for (let i = 0; i < n; i++) out.push({ type: 'data', offset: i, chunk: Buffer.from([i & 0xff]) });
  out.push({ type: 'archive-end' }, { type: 'manifest', data: Buffer.from('a') }, { type: 'manifest', data: Buffer.from('b') }, { type: 'end', endLsn: '0/1', timeline: 1 });
  return out;
}

test('no WAL plan: the source\'s events unchanged, manifest pieces and end in place; the source is held to the consumer\'s pace', async () => {
  const all = events(500);
  const seen: { hooks?: LiveSourceHooks } = {};
  let inner: Readable | null = null;
  const w = new StreamedWalSource({
    source: (h) => {
      seen.hooks = h;
      return (inner = Readable.from(all, { objectMode: true }));
    },
    wal: null,
  });
  assert.ok(seen.hooks, 'the factory got hooks');
  await seen.hooks.beforeBackup({} as never); // a no-op without a plan
  await sleep(50);
  // Nobody reads: the source is paused well before its end.
  assert.ok(inner!.readableLength <= 32 && !inner!.readableEnded, `source buffered ${inner!.readableLength}`);
  const got: BackupEvent[] = [];
  for await (const ev of w) got.push(ev);
  assert.deepEqual(got, all);
});

test('destroying the wrapper destroys the source; the source\'s error is the wrapper\'s', async () => {
  let inner: Readable | null = null;
  const w = new StreamedWalSource({ source: () => (inner = new Readable({ objectMode: true, read() {} })), wal: null });
  w.destroy();
  await sleep(10);
  assert.ok(inner!.destroyed);

  const w2 = new StreamedWalSource({ source: () => (inner = new Readable({ objectMode: true, read() {} })), wal: null });
  const failed = new Promise((resolve) => w2.once('error', resolve));
  inner!.destroy(new Error('server went away'));
  assert.match(String(await failed), /server went away/);
});
