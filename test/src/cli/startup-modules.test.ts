/**
 * A command compiles only its own code: the CLI loads each command's modules
 * in its action, and the backup builder loads a sink's (and -j's and S3's
 * stages) only when the plan names them. At every start, each module not
 * loaded is one V8 does not compile: `pgbb --version` 0.15 → 0.08 s, and a
 * `-F tar` backup reaches its first connection ~55 ms sooner (bench/README.md).
 * Checked in a fresh process, by the modules it holds after loading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const DIST = path.resolve(__dirname, '../../..');

/** dist-relative ids of pgbb's modules a fresh Node holds after `script`. */
function loadedAfter(script: string): string[] {
  const out = execFileSync(process.execPath, ['-e', `${script}; console.log(JSON.stringify(Object.keys(require.cache)))`], { cwd: DIST, encoding: 'utf8' });
  return (JSON.parse(out) as string[]).filter((p) => p.startsWith(DIST + path.sep) && !p.includes(`${path.sep}node_modules${path.sep}`)).map((p) => path.relative(DIST, p).replace(/\.js$/, ''));
}

const S3 = /^(src\/s3\/(?!s3-url$)|sinks\/s3|src\/pipeline\/s3-|src\/sources\/s3-)/;
const PARALLEL = /^src\/sources\/(parallel-(?!jobs$)|sql-run-fetch|local-fetch|remote-hash-fetch)/;
const OTHER_COMMANDS = /^src\/(commands\/(restore|verify|list|expire|standby|refresh)|pipeline\/(restore|verify|refresh|standby|server-target))$/;

test('the CLI loads no command before its action runs', () => {
  const mods = loadedAfter(`require('./src/cli.js')`);
  assert.ok(mods.includes('src/cli/backup-commands'), mods.join(' '));
  const commands = mods.filter((m) => m.startsWith('src/commands/') && m !== 'src/commands/encryption-options' && m !== 'src/commands/options' && m !== 'src/commands/password-prompt');
  assert.deepEqual(commands, []);
  assert.ok(!mods.some((m) => m.startsWith('src/pipeline/') || m.startsWith('sinks/')), mods.filter((m) => /^(src\/pipeline|sinks)\//.test(m)).join(' '));
  assert.ok(mods.length < 60, `${mods.length} modules`);
});

test('the backup command loads neither S3, nor -j, nor another command, until a plan asks for them', () => {
  const mods = loadedAfter(`require('./src/commands/backup.js')`);
  assert.ok(mods.includes('src/pipeline/backup'));
  assert.deepEqual(mods.filter((m) => S3.test(m) || PARALLEL.test(m) || OTHER_COMMANDS.test(m)), []);
  assert.deepEqual(mods.filter((m) => /^sinks\/(directory|tar-files|stdout|s3)$/.test(m)), [], 'no sink before the plan names one');
});

test('a plan names its sink, and only that one is loaded', () => {
  const mods = loadedAfter(`
    const { backupSink } = require('./src/pipeline/backup.js');
    const { settleBackup } = require('./src/pipeline/backup-plan.js');
    const plan = settleBackup({ connection: { conninfo: 'host=/nonexistent' }, target: require('node:os').tmpdir() + '/pgbb-never-made', format: 'tar' });
    backupSink(plan).destroy()`);
  assert.ok(mods.includes('sinks/tar-files'), mods.join(' '));
  assert.deepEqual(mods.filter((m) => /^sinks\/(directory|stdout|s3)$/.test(m) || S3.test(m) || PARALLEL.test(m)), []);
});
