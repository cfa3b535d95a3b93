/**
 * Tests for plainBackupSource (src/sources/plain-backup-source.ts) with the
 * directory sink it mirrors: a synthetic backup (test/support/
 * synthetic-backup.ts) written by DirectorySink comes back member for member —
 * a non-UTF-8 file name under its own bytes on disk and in the member stream,
 * a 300-byte path, a tablespace link with a 200-byte target (the only links a
 * data directory holds: the sink refuses others) — and verifies against the
 * manifest manifest-build wrote for it (Encoded-Path for the raw name).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupEvent } from '../../../src/events';
import { pathToBytes } from '../../../src/path-bytes';
import { plainBackupSource } from '../../../src/sources/plain-backup-source';
import { DirectorySink } from '../../../sinks/directory';
import { manifestBuild } from '../../../transforms/manifest-build';
import { manifestVerify } from '../../../transforms/manifest-verify';
import { LONG_NAME, LONG_TARGET, RAW_NAME, sampleEvents } from '../../support/synthetic-backup';

function files(events: BackupEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  let archive = '';
  let key = '';
  let desc = '';
  let data: Buffer[] = [];
  for (const ev of events) {
    if (ev.type === 'archive') archive = ev.name;
    else if (ev.type === 'entry') {
      key = `${archive}|${pathToBytes(ev.path).toString('hex')}`;
      desc = `${ev.kind} ${ev.kind === 'file' ? ev.size : 0} ${ev.linkTarget === undefined ? '' : pathToBytes(ev.linkTarget).toString('hex')}`;
      data = [];
    } else if (ev.type === 'data') data.push(Buffer.from(ev.chunk));
    else if (ev.type === 'entry-end') out.set(key, `${desc} ${Buffer.concat(data).toString('hex')}`);
  }
  return out;
}

test('DirectorySink → plainBackupSource: non-UTF-8 names, long paths and long link targets round-trip and verify', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pgbb-plain-src-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const target = join(root, 'data');
  const ts = join(root, LONG_TARGET.slice(1));
  // The sink makes links only at pg_tblspc/<oid>: the long target rides on the tablespace link.
  const events = sampleEvents({ tablespace: '/srv/pgbb-fuzz-ts' }).filter((ev, i, all) => {
    const at = (k: number) => all[k];
    const isLink = (e: BackupEvent | undefined) => e?.type === 'entry' && e.path === 'link-to-long-target';
    return !isLink(ev) && !(ev.type === 'entry-end' && isLink(at(i - 1)));
  });
  await pipeline(Readable.from(events, { objectMode: true }), manifestBuild(), new DirectorySink({ target, tablespaceMapping: { '/srv/pgbb-fuzz-ts': ts }, sync: true }));

  // On disk under its own bytes, and listed as Encoded-Path (as the server would).
  const raw = pathToBytes(RAW_NAME);
  assert.ok(readdirSync(target, { encoding: 'buffer' }).some((n) => n.equals(raw)), 'the file exists under its byte name');
  assert.equal((await fs.readFile(Buffer.concat([Buffer.from(`${target}/`), raw]))).toString(), 'non-UTF-8 name');
  assert.ok((await fs.readFile(join(target, 'backup_manifest'), 'utf8')).includes(`{ "Encoded-Path": "${raw.toString('hex')}", `));
  assert.ok(ts.length > 200);
  assert.equal(await fs.readFile(join(target, LONG_NAME), 'utf8'), 'long path');

  const got: BackupEvent[] = [];
  await pipeline(
    plainBackupSource(target),
    manifestVerify({ require: true }),
    new Writable({ objectMode: true, write: (ev: BackupEvent, _e, cb) => (got.push(ev), cb()) }),
  );
  const want = files(events);
  const have = files(got);
  for (const [k, v] of want) {
    if (k === `base|${Buffer.from('pg_tblspc/16385').toString('hex')}`) continue; // points where the sink put the tablespace
    assert.equal(have.get(k), v, k);
  }
  const link = got.find((e) => e.type === 'entry' && e.path === 'pg_tblspc/16385');
  assert.ok(link?.type === 'entry' && link.linkTarget === ts);
});
