import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { walVerify } from '../../transforms/wal-verify';
import type { BackupEvent } from '../../src/events';

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
