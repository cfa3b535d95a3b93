import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent, EntryEvent } from '../../src/events';
import { IoError } from '../../src/errors';
import { LIMITS } from '../../src/io/read-limited';
import { recoveryConfig } from '../../transforms/recovery-config';

function base(autoConf: Buffer[]): BackupEvent[] {
  const entry: EntryEvent = { type: 'entry', path: 'postgresql.auto.conf', kind: 'file', size: autoConf.reduce((n, b) => n + b.length, 0), mode: 0o666, mtime: new Date() };
  let offset = 0;
  return [
    { type: 'archive', kind: 'base', name: 'base', location: '' },
    entry,
    ...autoConf.map((chunk) => {
      const ev: BackupEvent = { type: 'data', offset, chunk };
      offset += chunk.length;
      return ev;
    }),
    { type: 'entry-end' },
    { type: 'archive-end' },
  ];
}

async function run(events: BackupEvent[], primaryConninfo?: string): Promise<BackupEvent[]> {
  const out: BackupEvent[] = [];
  await pipeline(
    Readable.from(events, { objectMode: true }),
    recoveryConfig({ primaryConninfo }),
    new Writable({ objectMode: true, write: (ev, _e, cb) => (out.push(ev), cb()) }),
  );
  return out;
}

test('-R with a password: postgresql.auto.conf comes out 0600 and secret, whatever mode the archive gave it', async () => {
  const out = await run(base([Buffer.from('work_mem = 4MB\n')]), 'host=db1 password=s3cret');
  const entry = out.find((e) => e.type === 'entry' && e.path === 'postgresql.auto.conf') as EntryEvent;
  assert.equal(entry.mode, 0o600);
  assert.equal(entry.secret, true);
  const body = Buffer.concat(out.filter((e) => e.type === 'data').map((e) => (e as { chunk: Buffer }).chunk)).toString();
  assert.match(body, /^work_mem = 4MB\n# recovery settings added by pgbb\nprimary_conninfo = 'host=db1 password=s3cret'\n$/);
});

test('a postgresql.auto.conf larger than the cap is refused, not held in memory', async () => {
  const piece = Buffer.alloc(1024 * 1024, 0x61);
  const pieces = Array.from({ length: LIMITS.autoConf.maxBytes / piece.length + 1 }, () => piece);
  await assert.rejects(run(base(pieces), 'host=db1'), (e: unknown) => e instanceof IoError && /postgresql\.auto\.conf in the backup is larger than 16777216 bytes/.test(e.message));
});
