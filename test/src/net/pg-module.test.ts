/**
 * Loading `pg` (src/net/pg-module.ts) does not load Node's bundled undici:
 * pg's Cloudflare probe would otherwise build a `new Response()` at every
 * backup's start (~27 ms on Node 20). Run in a fresh process, since this
 * one may have loaded both already; the global it lends pg is gone after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

function inFreshNode(script: string): unknown {
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

test('pgClient() loads pg without undici, and leaves globalThis as it found it', () => {
  const r = inFreshNode(`
    const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const Client = require(${JSON.stringify(require.resolve('../../../src/net/pg-module'))}).pgClient();
    const after = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    console.log(JSON.stringify({
      client: typeof Client === 'function' && typeof Client.prototype.connect === 'function',
      undici: process.moduleLoadList.filter((m) => m.includes('undici')),
      same: had === after || (had !== undefined && after !== undefined && had.get === after.get && had.value === after.value),
    }));
  `);
  assert.deepEqual(r, { client: true, undici: [], same: true });
});

test('pg loaded as it is would have loaded undici (what the test above guards against), on this Node', (t) => {
  const r = inFreshNode(`require('pg'); console.log(JSON.stringify(process.moduleLoadList.some((m) => m.includes('undici'))))`) as boolean;
  // Node 21+ has a navigator of its own, and pg probes nothing there.
  if (!('navigator' in globalThis)) assert.equal(r, true);
  else t.diagnostic(`this Node has navigator; pg loaded undici: ${r}`);
});
