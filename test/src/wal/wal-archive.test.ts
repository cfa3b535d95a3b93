import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalSpool } from '../../../src/wal/wal-spool';
import { walArchiveEvents } from '../../../src/wal/wal-archive';
import type { BackupEvent } from '../../../src/events';

const SEG = 64 * 1024;

async function collect(gen: AsyncGenerator<BackupEvent>): Promise<BackupEvent[]> {
  const out: BackupEvent[] = [];
  for await (const ev of gen) out.push(ev);
  return out;
}

test('pg_wal archive: status dir, segments whole, .done only for complete ones, history last', async () => {
  const s = WalSpool.create();
  try {
    await s.writeHistory('00000002.history', '1\t0/20000\tno recovery target specified\n');
    s.begin(BigInt(2 * SEG), 2, SEG);
    const wal = Buffer.alloc(SEG + 300);
    for (let i = 0; i < wal.length; i++) wal[i] = (i * 7) & 0xff;
    s.write(BigInt(2 * SEG), wal);
    const mtime = new Date('2024-01-02T03:04:05Z');
    const events = await collect(walArchiveEvents(s.summary(), { chunkSize: 1000, readSize: 4096, mtime }));

    assert.deepEqual(events[0], { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' });
    assert.equal(events[events.length - 1].type, 'archive-end');
    const entries = events.filter((e) => e.type === 'entry').map((e) => (e.type === 'entry' ? `${e.kind}:${e.path}:${e.size}` : ''));
    assert.deepEqual(entries, [
      'directory:archive_status:0',
      `file:000000020000000000000002:${SEG}`,
      'file:archive_status/000000020000000000000002.done:0',
      `file:000000020000000000000003:${SEG}`,
      'file:00000002.history:39',
      'file:archive_status/00000002.history.done:0',
    ]);
    assert.equal(events.filter((e) => e.type === 'entry').length, events.filter((e) => e.type === 'entry-end').length);

    // Reassemble each file from its data events: offsets contiguous, chunks bounded.
    const files = new Map<string, Buffer[]>();
    let current = '';
    let expect = 0;
    for (const e of events) {
      if (e.type === 'entry') {
        current = e.path;
        expect = 0;
        files.set(current, []);
        assert.equal(e.mtime, mtime);
        assert.equal(e.mode, e.kind === 'directory' ? 0o700 : 0o600);
      } else if (e.type === 'data') {
        assert.equal(e.offset, expect);
        assert.ok(e.chunk.length <= 1000 && e.chunk.length > 0);
        expect += e.chunk.length;
        files.get(current)!.push(e.chunk);
      }
    }
    const seg2 = Buffer.concat(files.get('000000020000000000000002')!);
    const seg3 = Buffer.concat(files.get('000000020000000000000003')!);
    assert.ok(seg2.equals(wal.subarray(0, SEG)));
    assert.equal(seg3.length, SEG, 'the partial segment is padded to a whole one');
    assert.ok(seg3.subarray(0, 300).equals(wal.subarray(SEG)));
    assert.ok(seg3.subarray(300).every((b) => b === 0));
    assert.equal(Buffer.concat(files.get('00000002.history')!).toString(), '1\t0/20000\tno recovery target specified\n');
  } finally {
    s.remove();
  }
});

test('pulled one event at a time: nothing is read ahead of the consumer', async () => {
  const s = WalSpool.create();
  try {
    s.begin(0n, 1, SEG);
    s.write(0n, Buffer.alloc(SEG, 1));
    const gen = walArchiveEvents(s.summary(), { chunkSize: 1024, readSize: 1024 });
    for (let i = 0; i < 5; i++) await gen.next();
    // Five events in, only the first 1 KiB read has happened: cut the file there and the next read
    // finds it short, proving nothing beyond it was read ahead (and a vanished spool fails cleanly).
    const seg = s.summary().segments[0].path;
    await fs.truncate(seg, 10);
    await assert.rejects(async () => {
      for (;;) if ((await gen.next()).done) break;
    }, /ended at 1024 bytes, expected 65536/);
  } finally {
    s.remove();
  }
});

test('in place: the archive says where its files already are, and that -r already paid for them', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-walarchive-'));
  try {
    const s = WalSpool.inPlace(join(root, 'pg_wal'));
    s.begin(0n, 1, SEG);
    s.write(0n, Buffer.alloc(SEG + 1, 3));
    s.finish();
    const events = await collect(walArchiveEvents(s.summary(), { paced: true }));
    assert.deepEqual(events[0], { type: 'archive', kind: 'wal', name: 'pg_wal', location: '', paced: true, writtenIn: join(root, 'pg_wal') });
    // Observers still get every byte, read back from where the files are.
    const bytes = events.reduce((n, e) => n + (e.type === 'data' ? e.chunk.length : 0), 0);
    assert.equal(bytes, 2 * SEG);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a link in place of a spool segment is refused, not followed: the file it names is not read', async () => {
  const s = WalSpool.create();
  const root = await fs.mkdtemp(join(tmpdir(), 'pgbb-walarchive-link-'));
  try {
    s.begin(0n, 1, SEG);
    s.write(0n, Buffer.alloc(SEG, 5));
    const seg = s.summary().segments[0].path;
    const elsewhere = join(root, 'secret');
    await fs.writeFile(elsewhere, Buffer.alloc(SEG, 0x53));
    await fs.rm(seg);
    await fs.symlink(elsewhere, seg);
    const seen: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const ev of walArchiveEvents(s.summary())) if (ev.type === 'data') seen.push(ev.chunk);
    }, (err: Error) => err.message.includes('could not open WAL spool file') && err.message.includes(seg));
    assert.equal(seen.length, 0, 'no byte of the file behind the link');
  } finally {
    s.remove();
    await fs.rm(root, { recursive: true, force: true });
  }
});
