import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveDataDirectoryError, postmasterState, refuseLiveDataDirectory } from '../../../src/io/live-cluster';

test('postmaster.pid naming a running pid is live; a dead pid or none is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbb-live-'));
  try {
    assert.equal(await refuseLiveDataDirectory(dir, 'refresh it'), null);
    writeFileSync(join(dir, 'postmaster.pid'), `${process.pid}\n${dir}\n1\n5432\n/tmp\n*\n  5432001     0\nready\n`);
    await assert.rejects(refuseLiveDataDirectory(dir, 'refresh it'), (e: unknown) => e instanceof LiveDataDirectoryError && e.message.includes(dir) && /refusing to refresh it/.test(e.message));
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dir, 'postmaster.pid'), `${dead}\n${dir}\n`);
    const st = await postmasterState(dir);
    assert.equal(st?.alive, false);
    assert.equal(st?.pid, Number(dead));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
