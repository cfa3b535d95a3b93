/**
 * The observer skeleton (transforms/observer.ts): hooks in stream order,
 * entry-end exactly once even when a stream leaves it out, HOLD, async
 * hooks passing the event once settled, and errors failing the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent, DataEvent, EntryEvent, ManifestEvent } from '../../src/events';
import { HOLD, Observer, type Verdict } from '../../transforms/observer';

const entry = (path: string): EntryEvent => ({ type: 'entry', path, kind: 'file', size: 1, mode: 0o600, mtime: new Date(0) });

class Recorder extends Observer {
  readonly seen: string[] = [];
  protected override onArchive(): void {
    this.seen.push(`archive ${this.archive?.name}`);
  }
  protected override onEntry(ev: EntryEvent): void {
    this.seen.push(`entry ${ev.path} in ${this.archive?.name}`);
  }
  protected override async onData(ev: DataEvent): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    this.seen.push(`data ${this.entry?.path} ${ev.chunk.toString()}`);
  }
  protected override onEntryEnd(e: EntryEvent): void {
    this.seen.push(`entry-end ${e.path}`);
  }
  protected override onArchiveEnd(): void {
    this.seen.push(`archive-end, archive now ${this.archive}`);
  }
  protected override onManifest(ev: ManifestEvent): Verdict {
    if (ev.data.toString() === 'held') return HOLD;
  }
  protected override onEnd(): void {
    this.seen.push(`end after start ${this.startEvent?.label}`);
  }
}

async function run(o: Observer, events: BackupEvent[]): Promise<{ out: BackupEvent[]; err: Error | null }> {
  const out: BackupEvent[] = [];
  let err: Error | null = null;
  await pipeline(Readable.from(events), o, new Writable({ objectMode: true, write: (ev, _c, cb) => (out.push(ev), cb()) })).catch((e) => (err = e));
  return { out, err };
}

test('hooks come in stream order; entry-end once per entry, also where the stream leaves it out; HOLD keeps an event back', async () => {
  const events: BackupEvent[] = [
    { type: 'start', serverVersion: 150000, systemIdentifier: '1', timeline: 1, startLsn: '0/0', tablespaces: [], walSegmentSize: 1 << 24, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'L', totalBytes: null },
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    entry('a'),
    { type: 'data', offset: 0, chunk: Buffer.from('x') },
    { type: 'entry-end' },
    entry('b'),
    entry('c'),
    { type: 'archive-end' },
    { type: 'progress', done: 1, total: null },
    { type: 'manifest', data: Buffer.from('held') },
    { type: 'manifest', data: Buffer.from('passed') },
    { type: 'end', endLsn: '0/1', timeline: 1 },
  ];
  const r = new Recorder();
  const { out, err } = await run(r, events);
  assert.equal(err, null);
  assert.deepEqual(r.seen, [
    'archive base',
    'entry a in base',
    'data a x',
    'entry-end a',
    'entry b in base',
    'entry-end b',
    'entry c in base',
    'entry-end c',
    'archive-end, archive now null',
    'end after start L',
  ]);
  assert.deepEqual(out, events.filter((e) => !(e.type === 'manifest' && e.data.toString() === 'held')));
});

test('a hook that throws, or an async hook that rejects, fails the stream with its error', async () => {
  class Thrower extends Observer {
    protected override onEntry(): void {
      throw new Error('sync boom');
    }
  }
  class Rejecter extends Observer {
    protected override async onData(): Promise<void> {
      throw new Error('async boom');
    }
  }
  const events: BackupEvent[] = [entry('a'), { type: 'data', offset: 0, chunk: Buffer.from('x') }];
  assert.match(String((await run(new Thrower(), events)).err), /sync boom/);
  assert.match(String((await run(new Rejecter(), events)).err), /async boom/);
});
