/**
 * errors.ts: a system error that escaped unwrapped becomes an IoError naming
 * its call and file; everything else is left as it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { asPgbbError, IoError, UsageError } from '../../src/errors';

test('a raw system error becomes an IoError with the call, the file and the reason; others pass through', () => {
  let raw: unknown;
  try {
    openSync('/nonexistent-pgbb-dir/x.js', 'r');
  } catch (e) {
    raw = e;
  }
  const e = asPgbbError(raw);
  assert.ok(e instanceof IoError);
  assert.equal(e.code, 'io');
  assert.equal(e.message, 'could not open "/nonexistent-pgbb-dir/x.js": no such file or directory');
  assert.equal(e.cause, raw);
  const emfile = Object.assign(new Error("EMFILE: too many open files, open '/p/m.js'"), { code: 'EMFILE', syscall: 'open', path: '/p/m.js', errno: -24 });
  assert.equal((asPgbbError(emfile) as Error).message, 'could not open "/p/m.js": too many open files');
  const noPath = Object.assign(new Error('EMFILE: too many open files, socket'), { code: 'EMFILE', syscall: 'socket' });
  assert.equal((asPgbbError(noPath) as Error).message, 'system call socket failed: too many open files');
  const usage = new UsageError('bad');
  assert.equal(asPgbbError(usage), usage);
  const plain = new Error('boom');
  assert.equal(asPgbbError(plain), plain);
  assert.equal(asPgbbError('text'), 'text');
});
