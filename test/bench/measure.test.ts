import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { measure } from '../../bench/support/measure';

const node = process.execPath;

test('bytes written by a grandchild are counted (reaped counters): to storage, files only; in write calls, every descriptor', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'pgbb-bench-measure-'));
  try {
    // sh → head: the writer is a descendant of the measured command, not the command itself.
    const s = await measure('/bin/sh', ['-c', `head -c 3000000 /dev/urandom > ${dir}/f; head -c 5000000 /dev/zero | cat > /dev/null`]);
    assert.ok(s.writeBytes >= 3_000_000 && s.writeBytes < 4_000_000, `writeBytes ${s.writeBytes}`);
    // Write calls count every descriptor: 3 MB to the file, 5 MB into the pipe, 5 MB to /dev/null.
    assert.ok(s.writeCallBytes >= 13_000_000 && s.writeCallBytes < 13_100_000, `writeCallBytes ${s.writeCallBytes}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('CPU seconds and peak RSS are the command\'s, not the wrapper\'s', async () => {
  // Busy until the child itself has used 0.4 s of CPU (wall time depends on the machine's load).
  const busy = await measure(node, ['-e', 'while (process.cpuUsage().user < 400_000);']);
  assert.ok(busy.cpu >= 0.4, `cpu ${busy.cpu}`);
  assert.ok(busy.wall >= busy.cpu / 2, `wall ${busy.wall}`);
  const big = await measure(node, ['-e', 'const b = Buffer.alloc(200 << 20, 1); console.log(b[5]);']);
  assert.ok(big.maxRssKb >= 200 * 1024, `maxRssKb ${big.maxRssKb}`);
  const small = await measure('/bin/true', []);
  assert.ok(small.maxRssKb < 20 * 1024, `a tiny command reports the wrapper's RSS: ${small.maxRssKb}`);
});

test('stderr is passed on without the timing line; a failing command rejects with its stderr', async () => {
  const s = await measure('/bin/sh', ['-c', 'echo one >&2; echo two >&2']);
  assert.equal(s.stderr, 'one\ntwo\n');
  await assert.rejects(measure('/bin/sh', ['-c', 'echo broken >&2; exit 3']), (err: Error) => /exit 3\): broken$/.test(err.message));
});

test('stdout goes to the file asked for', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'pgbb-bench-measure-'));
  try {
    await measure('/bin/echo', ['hello'], { stdoutTo: join(dir, 'out') });
    assert.equal(await fs.readFile(join(dir, 'out'), 'utf8'), 'hello\n');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
