import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { walVerify } from '../../transforms/wal-verify';
import type { BackupEvent } from '../../src/events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WalError } from '../../src/codec/wal-continuity';

const SEG = 16 * 1024 * 1024;

async function spoolsIn(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.startsWith('pgbb-walcheck-'));
}

test('the WAL check spool stays off memory-backed filesystems by default, and goes at destroy', async () => {
  assert.equal((await fs.statfs('/dev/shm')).type, 0x01021994, 'the test needs the usual tmpfs at /dev/shm');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/dev/shm';
  const before = await spoolsIn('/var/tmp');
  const v = walVerify();
  try {
    const events: BackupEvent[] = [
      { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' },
      { type: 'entry', path: '000000010000000000000002', kind: 'file', size: SEG, mode: 0o600, mtime: new Date(0) },
      { type: 'data', offset: 0, chunk: Buffer.alloc(1024, 1) },
    ];
    for (const ev of events) await new Promise<void>((res, rej) => v.write(ev, (err) => (err ? rej(err) : res())));
    assert.deepEqual(await spoolsIn('/dev/shm'), [], 'nothing in the tmpfs TMPDIR');
    const made = (await spoolsIn('/var/tmp')).filter((n) => !before.includes(n));
    assert.equal(made.length, 1, 'the spool is in /var/tmp');
    v.destroy();
    await new Promise((res) => v.on('close', res));
    assert.deepEqual((await spoolsIn('/var/tmp')).filter((n) => !before.includes(n)), [], 'removed at destroy');
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    v.destroy();
  }
});

const START: BackupEvent = {
  type: 'start', serverVersion: 150018, systemIdentifier: '1', timeline: 1, startLsn: '0/1000028', tablespaces: [],
  walSegmentSize: 1 << 20, blockSize: 8192, segmentBlocks: 131072, dataChecksums: true, label: 'x', totalBytes: null,
};

/** A backup whose one WAL segment is garbage (or absent). */
function walBackup(withSegment: boolean): BackupEvent[] {
  const seg = Buffer.alloc(1 << 20, 0x5a);
  return [
    START,
    { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' },
    ...(withSegment
      ? ([
          { type: 'entry', path: '000000010000000000000001', kind: 'file', size: seg.length, mode: 0o600, mtime: new Date(0) },
          { type: 'data', offset: 0, chunk: seg },
          { type: 'entry-end' },
        ] as BackupEvent[])
      : []),
    { type: 'archive-end' },
    { type: 'end', endLsn: '0/1000100', timeline: 1 },
  ];
}

async function runWal(events: BackupEvent[], mode?: 'fail' | 'report') {
  const v = walVerify({ mode });
  const out: BackupEvent[] = [];
  let err: Error | null = null;
  await pipeline(Readable.from(events), v, new Writable({ objectMode: true, write: (ev, _c, cb) => (out.push(ev), cb()) })).catch((e) => (err = e));
  return { v, out, err: err as Error | null };
}

test('report mode: broken or missing WAL never fails the stream; outcome() says what the error would have', async () => {
  const failed = await runWal(walBackup(true));
  assert.ok(failed.err instanceof WalError, String(failed.err));
  assert.ok(!failed.out.some((e) => e.type === 'end'));
  assert.deepEqual(failed.v.outcome().problems, [failed.err.message]);

  const reported = await runWal(walBackup(true), 'report');
  assert.equal(reported.err, null);
  assert.equal(reported.out.length, walBackup(true).length);
  assert.deepEqual(reported.v.outcome(), { check: 'WAL', problems: [failed.err.message], more: 0 });

  const none = await runWal(walBackup(false), 'report');
  assert.equal(none.err, null);
  assert.deepEqual(none.v.outcome().problems, ['the backup holds no WAL (taken with -X none?): nothing to check']);
  assert.throws(() => walVerify({ mode: 'x' as 'fail' }), /invalid WAL verifier mode "x"/);
});
