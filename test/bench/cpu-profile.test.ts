import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { summarize } from '../../bench/support/cpu-profile';

test('self time per function name + url:line, summed over nodes, from each sample\'s interval', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'pgbb-bench-prof-'));
  try {
    const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber, columnNumber: 0, scriptId: '1' });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', '', -1), children: [2, 3, 4, 5] },
        { id: 2, callFrame: frame('hash', 'file:///repo/dist/src/a.js', 9) },
        { id: 3, callFrame: frame('hash', 'file:///repo/dist/src/a.js', 9) }, // same function, other caller
        { id: 4, callFrame: frame('', 'node:internal/fs', 0) },
        { id: 5, callFrame: frame('(garbage collector)', '', -1) },
      ],
      startTime: 0,
      endTime: 100,
      samples: [2, 3, 4, 5, 2],
      timeDeltas: [0, 1000, 2500, 3000, 4000],
    };
    const path = join(dir, 'x.cpuprofile');
    await fs.writeFile(path, JSON.stringify(profile));
    const s = summarize(path, '/repo');
    assert.equal(s.totalMs, 10.5);
    assert.deepEqual(s.functions, [
      { name: '(garbage collector)', where: '', ms: 4 },
      { name: 'hash', where: 'dist/src/a.js:10', ms: 3.5 },
      { name: '(anonymous)', where: 'node:internal/fs:1', ms: 3 },
    ]);
    assert.deepEqual(s.files[0], { where: '(garbage collector)', ms: 4 });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
