/**
 * `npm run demo`, as README's first command runs it (the built script, an
 * embedded PostgreSQL 17): it ends with OK, and its numbers agree with each
 * other — what was backed up, what verify checked against the manifest, and
 * what restore wrote — or it would say why they differ.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { testScratch } from '../support/scratch';

const scratch = testScratch();

test('the demo backs up, verifies, restores and starts, and its counts agree', async () => {
  const cwd = await scratch.dir('pgbb-demo-');
  const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'demo.js')], { cwd, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^OK: backed up;/m);
  const agree = r.stdout.split('\n').filter((l) => l.includes('the counts agree'));
  assert.equal(agree.length, 2, r.stdout);
  assert.ok(!r.stdout.includes('the counts differ'), r.stdout);
});
