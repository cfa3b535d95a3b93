/**
 * stream-end (src/io/stream-end.ts): an end that fails rejects (end()'s
 * callback carries the error), and a stream its failure already closed is
 * waited for at once, not forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { destroyAndWait, endAndWait, whenClosed } from '../../../src/io/stream-end';

const failingFinal = () =>
  new Writable({
    write: (_c, _e, cb) => cb(),
    final: (cb) => cb(new Error('disk full at the last write')),
  });

test('endAndWait resolves once finished and rejects with what ended the stream', async () => {
  const ok = new Writable({ write: (_c, _e, cb) => cb() });
  ok.write('x');
  await endAndWait(ok);
  assert.equal(ok.writableFinished, true);
  const bad = failingFinal();
  bad.write('x');
  await assert.rejects(endAndWait(bad), /disk full at the last write/);
});

test('destroyAndWait and whenClosed: at once for a stream already closed; else once it closes, its error left to the caller', async () => {
  const bad = failingFinal();
  await assert.rejects(endAndWait(bad));
  await whenClosed(bad);
  assert.equal(bad.closed, true);
  // Closed by its failure: a 'close' listener added now would wait forever.
  await destroyAndWait(bad, new Error('again'));
  const open = new Writable({ write: (_c, _e, cb) => cb() });
  await destroyAndWait(open, new Error('given up'));
  assert.equal(open.closed, true);
  assert.equal(open.errored?.message, 'given up');
});
