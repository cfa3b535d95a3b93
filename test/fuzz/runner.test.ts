/**
 * The fuzz runner (test/fuzz/support/run-fuzz.ts) itself: it fails a run for
 * each kind of violation it promises to catch — a hang (a synchronous loop,
 * stopped by terminating its worker), an error that is not a PgbbError, a
 * case that keeps 100 MiB, a multi-line error message, an uncaught exception
 * — and passes a run that only rejects with PgbbErrors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from './support/run-fuzz';

const fails = async (t: Parameters<typeof fuzz>[0], name: string, n: number, expected: RegExp) => {
  await assert.rejects(fuzz(t, 'selftest', name, n, { timeoutMs: 500 }), (e: Error) => {
    assert.match(e.message, expected);
    assert.match(e.message, /replay: PGBB_FUZZ_SEED=\d+ PGBB_FUZZ_CASE=\d+/);
    return true;
  });
};

test('fuzz runner: a case stuck in a loop is a hang, and the run stops', async (t) => {
  await fails(t, 'hang', 10, /- hang: .*case still running after 500 ms .*PGBB_FUZZ_CASE=3 /);
});

test('fuzz runner: a TypeError is a violation', async (t) => {
  await fails(t, 'typeError', 5, /- not a PgbbError: TypeError: .*\(5×;/);
});

test('fuzz runner: 100 MiB kept by one case is a memory violation', async (t) => {
  await fails(t, 'allocation', 3, /- memory: Error: Buffers grew by 100\.0 MiB in one case .*PGBB_FUZZ_CASE=1 /);
});

test('fuzz runner: a PgbbError message on two lines is a violation', async (t) => {
  await fails(t, 'multiline', 2, /- unclear error message: TarFormatError/);
});

test('fuzz runner: an exception outside the case is a violation', async (t) => {
  await fails(t, 'uncaught', 3, /- uncaught exception: RangeError: late/);
});

test('fuzz runner: PgbbError rejections pass, counted by code', async (t) => {
  const r = await fuzz(t, 'selftest', 'clean', 200);
  assert.equal(r.accepted + r.rejected, 200);
  assert.equal(r.codes.tar_format, r.rejected);
  assert.ok(r.rejected > 50 && r.accepted > 50);
});
