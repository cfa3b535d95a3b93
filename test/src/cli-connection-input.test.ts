/**
 * Bad connection settings through the real CLI: every one is refused in one
 * line (`pgbb: error: …`, no stack trace) with exit 1, before
 * anything is created or locked — the target does not exist afterwards — and
 * no message quotes a value that could be a password.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { jsonEvents, reapChildren, spawnPgbb } from '../support/failure-helpers';

let root: string;
after(async () => {
  await reapChildren();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/** Connection variables of the runner's environment would change what is tested. */
const CLEAN_ENV = Object.fromEntries(
  Object.keys(process.env).filter((k) => k.startsWith('PG')).map((k) => [k, undefined]),
) as NodeJS.ProcessEnv;

const cases: { name: string; args?: string[]; env?: NodeJS.ProcessEnv; exit: number; message: RegExp }[] = [
  { name: '-p abc', args: ['-p', 'abc'], exit: 1, message: /^invalid port number "abc" given with -p \(1 to 65535\)$/ },
  { name: '-p 99999', args: ['-p', '99999'], exit: 1, message: /^invalid port number "99999" given with -p/ },
  { name: '-p 0', args: ['-p', '0'], exit: 1, message: /^invalid port number "0" given with -p/ },
  { name: 'PGPORT=abc', env: { PGPORT: 'abc' }, exit: 1, message: /^invalid port number "abc" in PGPORT \(1 to 65535\)$/ },
  { name: 'PGSSLMODE=sometimes', env: { PGSSLMODE: 'sometimes' }, exit: 1, message: /^invalid sslmode value "sometimes"$/ },
  { name: 'PGHOST with two hosts', env: { PGHOST: 'a,b' }, exit: 1, message: /^more than one host or port given/ },
  { name: 'PGSERVICE', env: { PGSERVICE: 'prod' }, exit: 1, message: /^environment variable PGSERVICE: connection option "service" is not supported by pgbb$/ },
  { name: 'unknown keyword', args: ['-d', 'host=127.0.0.1 foo=bar'], exit: 1, message: /^invalid connection option "foo"$/ },
  { name: 'a word without "="', args: ['-d', 'host=127.0.0.1 password=pw Secret99'], exit: 1, message: /^missing "=" after the word at position 28 in connection info string$/ },
  { name: 'unterminated quote', args: ['-d', "password='Secret99"], exit: 1, message: /^unterminated quoted string in connection info string \(the value of "password"\)$/ },
  { name: 'port in conninfo', args: ['-d', 'port=5432x'], exit: 1, message: /^invalid port number in the connection string \(1 to 65535\)$/ },
  { name: 'connect_timeout', args: ['-d', 'connect_timeout=soon'], exit: 1, message: /^invalid integer value "soon" for connection option "connect_timeout"$/ },
  { name: 'hostaddr not numeric', args: ['-d', 'hostaddr=db.example'], exit: 1, message: /^invalid hostaddr "db\.example": must be a numeric IP address$/ },
  { name: 'URI: bad percent escape in the password', args: ['-d', 'postgresql://bob:Secret%zz99@127.0.0.1/db'], exit: 1, message: /^invalid percent-encoded token at position 24 in URI$/ },
  { name: 'URI: unclosed IPv6 host', args: ['-d', 'postgres://[::1/db'], exit: 1, message: /^missing "\]" of the IPv6 host address that starts at position 12 in URI$/ },
  { name: 'URI: port not a number', args: ['-d', 'postgresql://h:54x/db'], exit: 1, message: /^invalid port number in the connection string/ },
  { name: 'URI without "@host": the password read as the port', args: ['-d', 'postgresql://bob:Secret99/db'], exit: 1, message: /^invalid port number in the connection string \(1 to 65535\)$/ },
  { name: 'URI: parameter without value', args: ['-d', 'postgresql://h/db?sslmode'], exit: 1, message: /^invalid URI query parameter at position 19: must be key=value$/ },
  { name: 'URI: unknown parameter', args: ['-d', 'postgresql://h/db?foo=1'], exit: 1, message: /^invalid URI query parameter "foo"$/ },
  { name: 'URI: two hosts', args: ['-d', 'postgresql://a,b/db'], exit: 1, message: /^more than one host in URI/ },
  { name: 'verify-full without a root certificate', args: ['-d', 'host=127.0.0.1 sslmode=verify-full'], exit: 1, message: /^root certificate file ".*root\.crt" does not exist: provide it/ },
];

for (const c of cases) {
  for (const command of ['backup', 'refresh'] as const) {
    test(`${command}, ${c.name}: exit ${c.exit}, one line, nothing created`, async () => {
      root ??= await fs.mkdtemp(join(tmpdir(), 'pgbb-cli-input-'));
      const target = join(root, `${command}-${c.name.replace(/\W+/g, '_')}`);
      const home = join(root, 'home'); // no ~/.postgresql/root.crt of the runner's
      const r = await spawnPgbb([command, ...(c.args ?? []), '-D', target], { env: { ...CLEAN_ENV, HOME: home, ...c.env } }).done;
      assert.equal(r.code, c.exit, r.stderr);
      const lines = r.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^pgbb: error: /);
      assert.match(lines[0].slice('pgbb: error: '.length), c.message);
      assert.ok(!r.stderr.includes('Secret'), 'a value that may be a password is not quoted');
      assert.ok(!existsSync(target), 'no target directory, no lock left behind');
    });
  }
}

test('with --json a bad setting is one JSON error event, code usage', async () => {
  root ??= await fs.mkdtemp(join(tmpdir(), 'pgbb-cli-input-'));
  for (const command of ['backup', 'refresh']) {
    const target = join(root, `json-${command}`);
    const r = await spawnPgbb([command, '-d', 'host=127.0.0.1 foo=bar', '-D', target, '--json'], { env: CLEAN_ENV }).done;
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(jsonEvents(r.stderr), [{ event: 'error', code: 'usage', message: 'invalid connection option "foo"' }]);
    assert.ok(!existsSync(target));
  }
});
