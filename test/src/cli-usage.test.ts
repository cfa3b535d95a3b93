/**
 * Usage errors from the option parser look like every other pgbb error: one
 * `pgbb: error: …` line and a hint naming the command's --help (or one JSON
 * `error` line under --json), exit 1 (as pg_basebackup), nothing else on stderr; an extra
 * positional argument is refused; -T is parsed as pg_basebackup parses it;
 * `pgbb standby`'s own option errors come before anything else, connecting to
 * the primary and (as root) judging DATADIR's owner included.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { runPgbb } from '../support/pgbb';
import { parseTablespaceMapping } from '../../src/commands/options';

test('an unknown option, a missing one, an extra argument: one line, a hint, exit 1', async () => {
  const cases: [string[], RegExp][] = [
    [['backup', '-D', '/nonexistent/x', '--bogus'], /^pgbb: error: unknown option '--bogus'\npgbb: hint: Try "pgbb backup --help" for more information\.\n$/],
    // pg_basebackup's words: -D or -t/--target (a server-side backup) is needed.
    [['backup'], /^pgbb: error: must specify output directory or backup target \(-D DIR or -t TARGET\)\n$/],
    [['verify', 'a', 'b'], /^pgbb: error: too many arguments for 'verify'\. Expected 1 argument but got 2\.\npgbb: hint: Try "pgbb verify --help" for more information\.\n$/],
    [['nonsense'], /^pgbb: error: unknown command 'nonsense'\npgbb: hint: Try "pgbb --help" for more information\.\n$/],
  ];
  for (const [args, expected] of cases) {
    const r = await runPgbb(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, expected);
    assert.equal(r.stdout, '');
  }
});

test('--json: a usage error is one JSON error line', async () => {
  const r = await runPgbb(['backup', '--json', '-D', '/nonexistent/x', '--bogus']);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  const ev = JSON.parse(lines[0]);
  assert.equal(ev.event, 'error');
  assert.equal(ev.code, 'usage');
  assert.equal(ev.message, "unknown option '--bogus'");
});

test('-T as pg_basebackup: a second "=" is refused, "\\=" escapes one', () => {
  assert.throws(() => parseTablespaceMapping('/foo=/bar=/baz', {}), /multiple "=" signs in tablespace mapping/);
  assert.throws(() => parseTablespaceMapping('/foo\\=x=/bar=', {}), /multiple "=" signs/);
  assert.deepEqual(parseTablespaceMapping('/fo\\=o=/ba\\=r', {}), { '/fo=o': '/ba=r' });
});

test('standby: -S with --create-slot, a bad slot name, -X fetch, --no-slot, --wait-timeout 0: one line, exit 1, before connecting or looking at DATADIR', async () => {
  // Nothing listens on port 1, and /nonexistent has no owner to become: either would be the error if it came first.
  const base = ['standby', '-d', 'host=127.0.0.1 port=1 user=postgres', '-D', '/nonexistent/standby'];
  const cases: [string[], string][] = [
    [['-S', 'one', '--create-slot', 'two'], '-S and --create-slot cannot be used together'],
    [['--create-slot', 'Bad-Name'], 'replication slot name "Bad-Name" contains invalid character (only lower case letters, numbers and the underscore are allowed)'],
    [['-X', 'fetch'], 'a standby needs its WAL streamed: -X stream'],
    [['--no-slot'], '--no-slot: a standby streams through a slot only with -S or --create-slot; leave --no-slot out'],
    [['--wait-timeout', '0'], '--wait-timeout must be more than 0 seconds'],
  ];
  for (const [extra, message] of cases) {
    const r = await runPgbb([...base, ...extra]);
    assert.equal(r.code, 1, extra.join(' '));
    assert.equal(r.stderr.split('\n')[0], `pgbb: error: ${message}`, extra.join(' '));
    assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
  }
  assert.ok(!existsSync('/nonexistent'));
});
