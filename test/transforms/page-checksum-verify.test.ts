/**
 * pageChecksumVerify on synthetic member streams: pages split at every
 * boundary, skipped pages (new, at or after the start LSN), a corrupt page
 * named by file and block, re-reads, and the error that replaces `end`.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import type { BackupEvent, StartEvent, WarningEvent } from '../../src/events';
import { ChecksumError, IoError, UsageError } from '../../src/errors';
import { pageChecksum } from '../../src/codec/page-checksum';
import { pageChecksumVerify, type PageChecksumResult, type PageChecksumVerifyOptions } from '../../transforms/page-checksum-verify';

const BS = 8192;

interface PageSpec {
  /** Absolute block number the checksum is computed for. */
  blockNo: number;
  lsn?: [number, number];
  /** Flip a byte in the middle after the checksum is set. */
  corrupt?: boolean;
  size?: number;
}

/** An initialized page with a body that differs per block and a correct checksum (unless corrupt). */
function page({ blockNo, lsn = [0, 0x1000], corrupt = false, size = BS }: PageSpec): Buffer {
  const p = Buffer.alloc(size);
  p.writeUInt32LE(lsn[0], 0);
  p.writeUInt32LE(lsn[1], 4);
  p.writeUInt16LE(24, 12);
  p.writeUInt16LE(size, 14);
  p.writeUInt16LE(size, 16);
  p.writeUInt16LE(size | 4, 18);
  for (let i = 24; i < size; i++) p[i] = (i * 7 + blockNo * 13) & 0xff;
  p.writeUInt16LE(pageChecksum(p, blockNo), 8);
  if (corrupt) p[size >> 1] ^= 0x40;
  return p;
}

function start(over: Partial<StartEvent> = {}): StartEvent {
  return {
    type: 'start',
    serverVersion: 150018,
    systemIdentifier: '7000000000000000001',
    timeline: 1,
    startLsn: '1/0',
    tablespaces: [],
    walSegmentSize: 16 * 1024 * 1024,
    blockSize: BS,
    segmentBlocks: 131072,
    dataChecksums: true,
    label: 'test',
    totalBytes: null,
    ...over,
  };
}

/** entry, data chunks of the given sizes (the last repeats), entry-end. */
function file(path: string, content: Buffer, chunkSizes: number[] = [32 * 1024]): BackupEvent[] {
  const out: BackupEvent[] = [{ type: 'entry', path, kind: 'file', size: content.length, mode: 0o600, mtime: new Date(0) }];
  for (let off = 0, k = 0; off < content.length; k++) {
    const n = Math.min(chunkSizes[Math.min(k, chunkSizes.length - 1)], content.length - off);
    out.push({ type: 'data', offset: off, chunk: content.subarray(off, off + n) });
    off += n;
  }
  out.push({ type: 'entry-end' });
  return out;
}

function backup(files: BackupEvent[], startEv: StartEvent = start()): BackupEvent[] {
  return [startEv, { type: 'archive', kind: 'base', name: 'base', location: '' }, ...files, { type: 'archive-end' }, { type: 'end', endLsn: '1/100', timeline: 1 }];
}

interface Run {
  out: BackupEvent[];
  warnings: WarningEvent[];
  error: Error | null;
  result: PageChecksumResult;
}

async function verify(events: BackupEvent[], opts: PageChecksumVerifyOptions = {}): Promise<Run> {
  const t = pageChecksumVerify(opts);
  const out: BackupEvent[] = [];
  let error: Error | null = null;
  await pipeline(
    Readable.from(events),
    t,
    new Writable({
      objectMode: true,
      write(ev: BackupEvent, _e, cb) {
        out.push(ev);
        cb();
      },
    }),
  ).catch((err) => (error = err));
  return { out, warnings: out.filter((e): e is WarningEvent => e.type === 'warning'), error, result: t.result };
}

const pages = (specs: PageSpec[]) => Buffer.concat(specs.map(page));

describe('pages split across chunks', () => {
  const good = pages([{ blockNo: 0 }, { blockNo: 1 }, { blockNo: 2 }]);
  const bad = pages([{ blockNo: 0 }, { blockNo: 1, corrupt: true }, { blockNo: 2 }]);
  // Every split position within 40 bytes of a page boundary (and of each page's header), and a few in between.
  const splits = new Set<number>([1, 100, 5000, 12000, 20000]);
  for (const b of [0, BS, 2 * BS, 3 * BS]) for (let d = -40; d <= 40; d++) if (b + d > 0 && b + d < 3 * BS) splits.add(b + d);

  test(`one split at each of ${splits.size} positions: three pages checked, no failure`, async () => {
    for (const s of splits) {
      const r = await verify(backup(file('base/5/16384', good, [s, 3 * BS])));
      assert.equal(r.error, null, `split at ${s}`);
      assert.equal(r.result.pagesChecked, 3, `split at ${s}`);
    }
  });

  test('one split at each position: the corrupt middle page, and only it, fails', async () => {
    for (const s of splits) {
      const r = await verify(backup(file('base/5/16384', bad, [s, 3 * BS])));
      assert.ok(r.error instanceof ChecksumError, `split at ${s}`);
      assert.deepEqual(
        r.result.failures.map((f) => f.block),
        [1],
        `split at ${s}`,
      );
      assert.equal(r.result.pagesChecked, 3);
    }
  });

  test('uniform chunk sizes from 1 byte to 64 KiB', async () => {
    for (const size of [1, 3, 7, 24, 100, 511, 4096, BS - 1, BS, BS + 1, 3 * BS - 1, 32 * 1024, 64 * 1024]) {
      const r = await verify(backup(file('base/5/16384', bad, [size])));
      assert.deepEqual(r.result.failures.map((f) => f.block), [1], `chunks of ${size}`);
      assert.equal(r.result.pagesChecked, 3, `chunks of ${size}`);
    }
  });

  test('chunks at unaligned memory addresses are read correctly', async () => {
    const shifted = Buffer.alloc(good.length + 3);
    good.copy(shifted, 3);
    const view = shifted.subarray(3);
    const r = await verify(backup(file('base/5/16384', view, [BS + 5, 2 * BS])));
    assert.equal(r.error, null);
    assert.equal(r.result.pagesChecked, 3);
  });

  test('one 160 KiB chunk at an odd address (more than the 64 KiB scratch): the corrupt page 13 is found', async () => {
    const specs: PageSpec[] = [];
    for (let i = 0; i < 20; i++) specs.push({ blockNo: i, corrupt: i === 13 });
    const content = pages(specs);
    const shifted = Buffer.alloc(content.length + 1);
    content.copy(shifted, 1);
    const r = await verify(backup(file('base/5/16384', shifted.subarray(1), [content.length])));
    assert.deepEqual(r.result.failures.map((f) => f.block), [13]);
    assert.equal(r.result.pagesChecked, 20);
  });
});

describe('which pages are checked', () => {
  test('new pages (pd_upper == 0) are skipped, all-zero or not', async () => {
    const garbageNew = Buffer.alloc(BS, 0x77);
    garbageNew.writeUInt16LE(0, 14);
    const content = Buffer.concat([page({ blockNo: 0 }), Buffer.alloc(BS), garbageNew, page({ blockNo: 3 })]);
    const r = await verify(backup(file('base/5/16384', content)));
    assert.equal(r.error, null);
    assert.equal(r.result.pagesChecked, 2);
    assert.equal(r.result.pagesSkipped, 2);
  });

  test('pages with an LSN at or after the start LSN are skipped; just before it, checked', async () => {
    const content = pages([
      { blockNo: 0, lsn: [1, 0], corrupt: true }, // == start 1/0: skipped
      { blockNo: 1, lsn: [1, 5], corrupt: true }, // after: skipped
      { blockNo: 2, lsn: [2, 0], corrupt: true }, // after (high half): skipped
      { blockNo: 3, lsn: [0, 0xffffffff], corrupt: true }, // just before: fails
    ]);
    const r = await verify(backup(file('base/5/16384', content)));
    assert.equal(r.result.pagesSkipped, 3);
    assert.deepEqual(r.result.failures.map((f) => f.block), [3]);
  });

  test('the start LSN option wins over the start event', async () => {
    const content = pages([{ blockNo: 0, lsn: [0, 0x2000], corrupt: true }]);
    const r = await verify(backup(file('base/5/16384', content)), { startLsn: '0/2000' });
    assert.equal(r.error, null);
    assert.equal(r.result.pagesSkipped, 1);
  });

  test('non-relation files, directories and pg_wal are not checked', async () => {
    const junk = Buffer.alloc(BS, 0x11);
    const events: BackupEvent[] = [
      start(),
      { type: 'archive', kind: 'base', name: 'base', location: '' },
      ...file('global/pg_control', junk),
      ...file('base/5/PG_VERSION', junk),
      ...file('pg_xact/0000', junk),
      { type: 'entry', path: 'base/5', kind: 'directory', size: 0, mode: 0o700, mtime: new Date(0) },
      { type: 'entry-end' },
      { type: 'archive-end' },
      { type: 'archive', kind: 'wal', name: 'pg_wal', location: '' },
      ...file('base/5/16384', junk), // never a relation file inside pg_wal
      { type: 'archive-end' },
      { type: 'end', endLsn: '1/100', timeline: 1 },
    ];
    const r = await verify(events);
    assert.equal(r.error, null);
    assert.equal(r.result.filesChecked, 0);
    assert.equal(r.result.pagesChecked + r.result.pagesSkipped, 0);
  });

  test('a cluster without data checksums: nothing is checked, every event passes', async () => {
    const events = backup(file('base/5/16384', pages([{ blockNo: 0, corrupt: true }])), start({ dataChecksums: false }));
    const r = await verify(events);
    assert.equal(r.error, null);
    assert.equal(r.result.enabled, false);
    assert.equal(r.result.pagesChecked, 0);
    assert.deepEqual(r.out, events);
  });

  test('segment files: the block number mixes in segno × segment blocks', async () => {
    // With 4-block segments, page 1 of 16384.2 is block 9.
    const content = pages([{ blockNo: 8 }, { blockNo: 9 }]);
    const ok = await verify(backup(file('base/5/16384.2', content), start({ segmentBlocks: 4 })));
    assert.equal(ok.error, null);
    assert.equal(ok.result.pagesChecked, 2);
    // Numbered as if in segment 0, they fail.
    const wrong = await verify(backup(file('base/5/16384.2', pages([{ blockNo: 0 }, { blockNo: 1 }])), start({ segmentBlocks: 4 })));
    assert.equal(wrong.result.failureCount, 2);
  });

  test('other block sizes come from the start event', async () => {
    const content = Buffer.concat([page({ blockNo: 0, size: 4096 }), page({ blockNo: 1, size: 4096, corrupt: true })]);
    const r = await verify(backup(file('base/5/16384', content, [1000]), start({ blockSize: 4096 })));
    assert.deepEqual(r.result.failures.map((f) => f.block), [1]);
    assert.equal(r.result.pagesChecked, 2);
  });

  test('a trailing partial page is a warning, not a failure', async () => {
    const content = Buffer.concat([page({ blockNo: 0 }), Buffer.alloc(100, 1)]);
    const r = await verify(backup(file('base/5/16384', content)));
    assert.equal(r.error, null);
    assert.deepEqual(
      r.warnings.map((w) => [w.code, w.message]),
      [['checksum_unverified', 'could not verify checksum in file "./base/5/16384", block 1: the file ends 100 bytes into the page (page size 8192)']],
    );
  });

  test('a jump in offsets (an upstream stage passing only some chunks) drops the partial page, no false failure', async () => {
    const content = pages([{ blockNo: 0 }, { blockNo: 1 }, { blockNo: 2 }, { blockNo: 3 }]);
    const events = backup([
      { type: 'entry', path: 'base/5/16384', kind: 'file', size: content.length, mode: 0o600, mtime: new Date(0) },
      { type: 'data', offset: 0, chunk: content.subarray(0, BS + 10) },
      { type: 'data', offset: 3 * BS - 5, chunk: content.subarray(3 * BS - 5) }, // resumes mid-page 2
      { type: 'entry-end' },
    ]);
    const r = await verify(events);
    assert.equal(r.error, null);
    assert.equal(r.result.pagesChecked, 2); // pages 0 and 3
  });
});

describe('failures', () => {
  test('a corrupt page: a warning naming file and block, then a ChecksumError in place of end', async () => {
    const content = pages([{ blockNo: 0 }, { blockNo: 1 }, { blockNo: 2 }, { blockNo: 3 }, { blockNo: 4 }, { blockNo: 5, corrupt: true }]);
    const events = backup(file('base/5/16390', content));
    const r = await verify(events);
    const bad = content.subarray(5 * BS);
    const want = `checksum verification failed in file "./base/5/16390", block 5: calculated ${pageChecksum(bad, 5).toString(16).toUpperCase()} but expected ${bad.readUInt16LE(8).toString(16).toUpperCase()}`;
    assert.deepEqual(r.warnings, [{ type: 'warning', code: 'checksum', message: want }]);
    assert.ok(r.error instanceof ChecksumError);
    assert.equal(r.error.message, `1 page checksum verification failure: ${want}`);
    assert.ok(!r.out.some((e) => e.type === 'end'), 'end is not passed on');
    assert.deepEqual(r.result.failures, [
      { path: 'base/5/16390', block: 5, blockNumber: 5, calculated: pageChecksum(bad, 5), expected: bad.readUInt16LE(8), message: want },
    ]);
    // Everything else passed through unchanged, in order (the warning right before the chunk holding the page).
    assert.deepEqual(r.out.filter((e) => e.type !== 'warning'), events.slice(0, -1));
  });

  test('17+: messages give the absolute block number, as the server does', async () => {
    const content = pages([{ blockNo: 131072 }, { blockNo: 131073, corrupt: true }]);
    const r = await verify(backup(file('base/5/16390.1', content), start({ serverVersion: 170004 })));
    assert.match(r.result.failures[0].message, /^checksum verification failed in file "\.\/base\/5\/16390\.1", block 131073: /);
    assert.equal(r.result.failures[0].block, 1);
    assert.equal(r.result.failures[0].blockNumber, 131073);
  });

  test('tablespace files are named by the tablespace location, and checked under pg_tblspc/<oid>/', async () => {
    const content = pages([{ blockNo: 0, corrupt: true }]);
    const events: BackupEvent[] = [
      start(),
      { type: 'archive', kind: 'tablespace', name: '16390', location: '/srv/ts' },
      ...file('PG_15_202209061/5/16385', content),
      { type: 'archive-end' },
      { type: 'end', endLsn: '1/100', timeline: 1 },
    ];
    const r = await verify(events);
    assert.equal(r.result.failures[0].path, 'pg_tblspc/16390/PG_15_202209061/5/16385');
    assert.match(r.result.failures[0].message, /in file "\/srv\/ts\/PG_15_202209061\/5\/16385", block 0:/);
  });

  test('many failures: 5 warnings per file, then "further", the file total; the error lists 10 and "and N more"', async () => {
    const specs: PageSpec[] = [];
    for (let i = 0; i < 12; i++) specs.push({ blockNo: i, corrupt: true });
    const r = await verify(backup([...file('base/5/100', pages(specs)), ...file('base/5/200', pages(specs.slice(0, 2)))]));
    const msgs = r.warnings.map((w) => w.message);
    assert.equal(msgs.filter((m) => m.includes('"./base/5/100", block')).length, 5);
    assert.ok(msgs.includes('further checksum verification failures in file "./base/5/100" will not be reported'));
    assert.ok(msgs.includes('file "./base/5/100" has a total of 12 checksum verification failures'));
    assert.ok(msgs.includes('file "./base/5/200" has a total of 2 checksum verification failures'));
    assert.equal(r.result.failureCount, 14);
    assert.equal(r.result.failures.length, 14);
    assert.ok(r.error instanceof ChecksumError);
    assert.match(r.error.message, /^14 page checksum verification failures: checksum verification failed in file "\.\/base\/5\/100", block 0: .*; and 4 more$/);
    assert.equal(r.error.message.split('checksum verification failed in file').length - 1, 10);
  });

  test('a stream that ends without `end` still fails', async () => {
    const events = backup(file('base/5/16384', pages([{ blockNo: 0, corrupt: true }]))).slice(0, -1);
    const r = await verify(events);
    assert.ok(r.error instanceof ChecksumError);
  });
});

describe('re-read', () => {
  const content = pages([{ blockNo: 0 }, { blockNo: 1, corrupt: true }, { blockNo: 2 }]);

  test('a page that reads correctly the second time is not a failure; reread is asked for exactly that page', async () => {
    const asked: Array<[string, number]> = [];
    const r = await verify(backup(file('base/5/16384', content, [BS + 100])), {
      reread: async (path, index) => {
        asked.push([path, index]);
        return page({ blockNo: index });
      },
    });
    assert.equal(r.error, null);
    assert.deepEqual(asked, [['base/5/16384', 1]]);
    assert.equal(r.result.pagesChecked, 3);
    assert.equal(r.warnings.length, 0);
  });

  test('a re-read page now at or after the start LSN is skipped', async () => {
    const r = await verify(backup(file('base/5/16384', content)), { reread: async (_p, i) => page({ blockNo: i, lsn: [1, 8], corrupt: true }) });
    assert.equal(r.error, null);
    assert.equal(r.result.pagesSkipped, 1);
    assert.equal(r.result.pagesChecked, 2);
  });

  test('a page gone on re-read (file truncated meanwhile) is not a failure', async () => {
    const r = await verify(backup(file('base/5/16384', content)), { reread: async () => null });
    assert.equal(r.error, null);
    assert.equal(r.result.pagesSkipped, 1);
  });

  test('still corrupt after the re-read: a failure, with the re-read page\'s checksums', async () => {
    const again = page({ blockNo: 1, corrupt: true });
    again[100] ^= 1;
    const r = await verify(backup(file('base/5/16384', content)), { reread: async () => again });
    assert.ok(r.error instanceof ChecksumError);
    assert.equal(r.result.failures[0].calculated, pageChecksum(again, 1));
  });

  test('a re-read that fails or returns a short page fails the stream with that error', async () => {
    const boom = new IoError('disk on fire');
    const r1 = await verify(backup(file('base/5/16384', content)), { reread: async () => Promise.reject(boom) });
    assert.equal(r1.error, boom);
    const r2 = await verify(backup(file('base/5/16384', content)), { reread: async () => Buffer.alloc(100) });
    assert.ok(r2.error instanceof IoError);
    assert.match(r2.error.message, /could not re-read block 1 of file "\.\/base\/5\/16384": got 100 bytes, expected 8192/);
  });
});

test('bad options are refused up front', () => {
  assert.throws(() => pageChecksumVerify({ startLsn: 'nope' }), UsageError);
  assert.throws(() => pageChecksumVerify({ blockSize: 1000 }), UsageError);
  assert.throws(() => pageChecksumVerify({ segmentBlocks: 0 }), UsageError);
});

describe('report mode', () => {
  const bad = pages([{ blockNo: 0 }, { blockNo: 1, corrupt: true }, { blockNo: 2, corrupt: true }]);

  test('a corrupt page never fails the stream: end passes, outcome() names each failure as the server words it', async () => {
    const events = backup(file('base/5/16384', bad));
    const r = await verify(events, { mode: 'report' });
    assert.equal(r.error, null);
    assert.equal(r.out[r.out.length - 1].type, 'end');
    assert.equal(r.out.filter((e) => e.type !== 'warning').length, events.length);
    const t = pageChecksumVerify({ mode: 'report' });
    await pipeline(Readable.from(events), t, new Writable({ objectMode: true, write: (_e, _c, cb) => cb() }));
    const o = t.outcome();
    assert.equal(o.check, 'page checksums');
    assert.equal(o.more, 0);
    assert.equal(o.problems.length, 2);
    assert.match(o.problems[0], /^checksum verification failed in file "\.\/base\/5\/16384", block 1: calculated [0-9A-F]+ but expected [0-9A-F]+$/);
  });

  test('fail mode (the default) still fails in place of end, and outcome() lists the same', async () => {
    const t = pageChecksumVerify();
    await assert.rejects(
      pipeline(Readable.from(backup(file('base/5/16384', bad))), t, new Writable({ objectMode: true, write: (_e, _c, cb) => cb() })),
      ChecksumError,
    );
    assert.equal(t.outcome().problems.length, 2);
    assert.throws(() => pageChecksumVerify({ mode: 'quiet' as 'fail' }), UsageError);
  });

  test('a failing re-read still fails the stream in report mode', async () => {
    const boom = new IoError('disk on fire');
    const r = await verify(backup(file('base/5/16384', bad)), { mode: 'report', reread: async () => Promise.reject(boom) });
    assert.equal(r.error, boom);
  });
});
