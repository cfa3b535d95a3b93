/** libpq's default host: the first socket directory that holds the server's socket, else the first. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { clientConfig, defaultSocketDir, describeServer } from '../../../src/net/conninfo';

test('no host: the socket directory that has .s.PGSQL.<port>, else the first; named by its socket file', async () => {
  const a = await mkdtemp(join(tmpdir(), 'pgbb-sock-a-'));
  const b = await mkdtemp(join(tmpdir(), 'pgbb-sock-b-'));
  try {
    assert.equal(defaultSocketDir('5999', [a, b]), a);
    await writeFile(join(b, '.s.PGSQL.5999'), '');
    assert.equal(defaultSocketDir('5999', [a, b]), b);
    assert.equal(defaultSocketDir('5998', [a, b]), a);
  } finally {
    await rm(a, { recursive: true });
    await rm(b, { recursive: true });
  }
  const saved = { ...process.env };
  try {
    delete process.env.PGHOST;
    delete process.env.PGHOSTADDR;
    const c = clientConfig({ port: 59999 }, true);
    assert.ok(c.host === '/var/run/postgresql' || c.host === '/tmp', String(c.host));
    assert.equal(c.ssl, false, 'no TLS over a Unix socket, whatever sslmode says');
    assert.equal(describeServer(c), `${c.host}/.s.PGSQL.59999`);
    assert.equal(clientConfig({ host: 'db1' }, true).host, 'db1');
  } finally {
    process.env = saved;
  }
});
