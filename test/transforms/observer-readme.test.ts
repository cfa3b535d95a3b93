/**
 * README's library example "a custom observer": an Observer subclass that
 * counts bytes per archive, run as written over the synthetic backup stream
 * (test/support/synthetic-backup.ts) instead of a live server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Observer, type ArchiveEvent, type BackupEvent, type DataEvent } from '../../src/index';
import { sampleEvents } from '../support/synthetic-backup';

// ── README ──
class BytesPerArchive extends Observer {
  readonly bytes = new Map<string, number>(); // 'base', each tablespace OID, 'pg_wal'
  protected override onData(ev: DataEvent): void {
    const name = this.archive!.name;
    this.bytes.set(name, (this.bytes.get(name) ?? 0) + ev.chunk.length);
  }
}
// ── end ──

test('README: an Observer subclass sees every byte, knows its archive, and passes every event on unchanged', async () => {
  const events = sampleEvents();
  const expected = new Map<string, number>();
  let archive: ArchiveEvent | null = null;
  for (const ev of events) {
    if (ev.type === 'archive') archive = ev;
    if (ev.type === 'data') expected.set(archive!.name, (expected.get(archive!.name) ?? 0) + ev.chunk.length);
  }
  assert.ok(expected.size >= 2, 'the sample has more than one archive with data');
  const seen: BackupEvent[] = [];
  const counter = new BytesPerArchive();
  await pipeline(Readable.from(events), counter, new Writable({ objectMode: true, write: (ev, _e, cb) => (seen.push(ev), cb()) }));
  assert.deepEqual(counter.bytes, expected);
  assert.equal(seen.length, events.length);
  seen.forEach((ev, i) => assert.equal(ev, events[i], `event ${i} passed on as the same object`));
});
