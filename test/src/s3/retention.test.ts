import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRetention, type RetentionInput } from '../../../src/s3/retention';

const day = (d: number) => new Date(Date.UTC(2026, 11, d));
const full = (id: string, d: number): RetentionInput => ({ id, complete: true, kind: 'full', parent: null, started: day(d) });
const incr = (id: string, d: number, parent: string): RetentionInput => ({ id, complete: true, kind: 'incremental', parent, started: day(d) });
const now = day(20);

test('retention: --retain-full keeps the newest N fulls and their incrementals', () => {
  const d = decideRetention([full('a', 1), incr('a1', 2, 'a'), full('b', 3), incr('b1', 4, 'b'), full('c', 5)], { retainFull: 2, graceHours: 24, now });
  assert.deepEqual(d.remove.map((r) => r.id), ['a', 'a1']);
});

test('retention: a backup a kept incremental needs is never removed, whatever its age', () => {
  const d = decideRetention([full('a', 1), incr('a1', 2, 'a'), incr('a2', 19, 'a1')], { retainDays: 3, graceHours: 24, now });
  assert.deepEqual(d.remove, []);
});

test('retention: --retain-days; the newest complete backup always stays', () => {
  assert.deepEqual(decideRetention([full('a', 1), full('b', 2), full('c', 18)], { retainDays: 5, graceHours: 24, now }).remove.map((r) => r.id), ['a', 'b']);
  assert.deepEqual(decideRetention([full('a', 1), full('b', 2)], { retainDays: 5, graceHours: 24, now }).remove.map((r) => r.id), ['a']);
});

test('retention: incomplete backups go only once older than the grace period', () => {
  const young: RetentionInput = { id: 'y', complete: false, kind: null, parent: null, started: new Date(now.getTime() - 3_600_000) };
  const old: RetentionInput = { id: 'o', complete: false, kind: null, parent: null, started: day(10) };
  const d = decideRetention([full('a', 1), old, young], { retainFull: 1, graceHours: 24, now });
  assert.deepEqual(d.remove, [{ id: 'o', why: 'incomplete, older than the grace period' }]);
});
