import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressSuffix, formatCompressSpec, parseCompressSpec } from '../../../src/codec/compression';
import { UsageError } from '../../../src/errors';

test('pg_basebackup forms: none, zstd, zstd:N, zstd:level=N,workers=N, client- prefix', () => {
  assert.deepEqual(parseCompressSpec('none'), { method: 'none' });
  assert.deepEqual(parseCompressSpec('client-none'), { method: 'none' });
  assert.deepEqual(parseCompressSpec('0'), { method: 'none' });
  assert.deepEqual(parseCompressSpec('zstd'), { method: 'zstd', level: 3 });
  assert.deepEqual(parseCompressSpec('zstd:5'), { method: 'zstd', level: 5 });
  assert.deepEqual(parseCompressSpec('zstd:level=5'), { method: 'zstd', level: 5 });
  assert.deepEqual(parseCompressSpec('zstd:level=1,workers=2'), { method: 'zstd', level: 1, workers: 2 });
  assert.deepEqual(parseCompressSpec('zstd:workers=2,level=1'), { method: 'zstd', level: 1, workers: 2 });
  assert.deepEqual(parseCompressSpec('zstd:workers=4'), { method: 'zstd', level: 3, workers: 4 });
  assert.deepEqual(parseCompressSpec('zstd:workers=0'), { method: 'zstd', level: 3, workers: 0 });
  assert.deepEqual(parseCompressSpec('client-zstd:level=1,workers=2'), { method: 'zstd', level: 1, workers: 2 });
  assert.deepEqual(parseCompressSpec('client-zstd'), { method: 'zstd', level: 3 });
  assert.deepEqual(parseCompressSpec('ZSTD: level = 7 , workers = 1'), { method: 'zstd', level: 7, workers: 1 });
});

test('levels 1 and 19 are the bounds; 0, 20, 22 and negative levels are refused', () => {
  assert.equal((parseCompressSpec('zstd:1') as { level: number }).level, 1);
  assert.equal((parseCompressSpec('zstd:level=19') as { level: number }).level, 19);
  for (const bad of ['zstd:0', 'zstd:20', 'zstd:22', 'zstd:-1', 'zstd:level=0', 'zstd:level=20', 'zstd:level=1.5', 'zstd:level=x']) {
    assert.throws(() => parseCompressSpec(bad), (e: unknown) => e instanceof UsageError && /out of range \(1\.\.19\)/.test(e.message), bad);
  }
});

test('workers must be a whole number 0..256', () => {
  assert.equal((parseCompressSpec('zstd:workers=256') as { workers: number }).workers, 256);
  for (const bad of ['zstd:workers=257', 'zstd:workers=-1', 'zstd:workers=two', 'zstd:workers=1.5']) {
    assert.throws(() => parseCompressSpec(bad), /zstd workers .* is out of range \(0\.\.256\)/, bad);
  }
});

test('server-zstd is the server-side form; its level is checked as client zstd\'s, other server methods refused', () => {
  assert.deepEqual(parseCompressSpec('server-zstd'), { method: 'zstd', level: 3, server: true });
  assert.deepEqual(parseCompressSpec('server-zstd:1'), { method: 'zstd', level: 1, server: true });
  assert.deepEqual(parseCompressSpec('server-zstd:level=5,workers=2'), { method: 'zstd', level: 5, workers: 2, server: true });
  assert.equal(formatCompressSpec(parseCompressSpec('server-zstd:level=5')), 'server-zstd:level=5');
  assert.throws(() => parseCompressSpec('server-zstd:level=99'), (e: unknown) => e instanceof UsageError && /^invalid compression specification "server-zstd:level=99": zstd level "99" is out of range/.test(e.message));
  assert.throws(() => parseCompressSpec('server-gzip'), /server-side compression method "gzip" is not supported \(use server-zstd\)/);
  assert.throws(() => parseCompressSpec('server-lz4:1'), /server-side compression method "lz4" is not supported/);
});

test('every malformed spec is a one-line UsageError naming the spec', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['gzip', /compression method "gzip" is not supported \(use zstd or none\)/],
    ['lz4:1', /compression method "lz4" is not supported/],
    ['client-gzip:5', /compression method "gzip" is not supported/],
    ['5', /a bare level means gzip to pg_basebackup.*use "zstd:5"/],
    ['none:1', /"none" takes no level or workers/],
    ['zstd:', /nothing after ":"/],
    ['zstd:long', /unknown keyword "long" \(zstd accepts level and workers\)/],
    ['zstd:level', /"level" needs a value/],
    ['zstd:workers=', /"workers" needs a value/],
    ['zstd:level=1,level=2', /level given twice/],
    ['zstd:workers=1,workers=2', /workers given twice/],
    ['zstd:level=1,,workers=2', /empty item/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(
      () => parseCompressSpec(spec),
      (e: unknown) => e instanceof UsageError && e.code === 'usage' && re.test(e.message) && !e.message.includes('\n'),
      spec,
    );
    if (spec) assert.throws(() => parseCompressSpec(spec), new RegExp(`"${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`), spec);
  }
});

test('formatCompressSpec and compressSuffix', () => {
  assert.equal(formatCompressSpec(parseCompressSpec('zstd:1')), 'zstd:level=1');
  assert.equal(formatCompressSpec(parseCompressSpec('zstd:level=1,workers=2')), 'zstd:level=1,workers=2');
  assert.equal(formatCompressSpec({ method: 'none' }), 'none');
  assert.deepEqual(parseCompressSpec(formatCompressSpec({ method: 'zstd', level: 9, workers: 3 })), { method: 'zstd', level: 9, workers: 3 });
  assert.equal(compressSuffix({ method: 'zstd', level: 3 }), '.zst');
  assert.equal(compressSuffix({ method: 'none' }), '');
  assert.equal(compressSuffix(undefined), '');
});
