/**
 * planPieces and OrderedFetch (src/sources/parallel-fetch.ts) with fetchers
 * that finish out of order: pieces come back in plan order, largest files
 * first, small files batched, workers never more than the window ahead, and
 * the first failure is what the consumer gets.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { OrderedFetch, pieceByPiece, planPieces, type Piece } from '../../../src/sources/parallel-fetch';
import type { ListedFile } from '../../../src/sources/parallel-listing';
import type { SqlSession } from '../../../src/net/sql-session';

const file = (path: string, size: number): ListedFile => ({ path, serverPath: path, size, mtime: new Date(0) });
const sessions = (n: number) => Array.from({ length: n }, () => ({}) as SqlSession);

test('largest files first, each cut into chunks; small ones share batches up to the chunk size', () => {
  const pieces = planPieces([file('a', 10), file('big', 250), file('b', 60), file('c', 50), file('empty', 0)], 100);
  assert.deepEqual(
    pieces.map((p) => (p.kind === 'chunk' ? `${p.file.path}@${p.offset}+${p.length}${p.last ? '!' : ''}` : p.files.map((f) => f.path).join(','))),
    ['big@0+100', 'big@100+100', 'big@200+50!', 'b', 'c,a,empty'],
  );
});

test('out-of-order fetches come back in plan order, never more than the window ahead', async () => {
  const pieces = planPieces(Array.from({ length: 20 }, (_, i) => file(`f${i}`, 100 + i)), 100);
  let inFlightAhead = 0;
  let delivered = 0;
  const fetch = new OrderedFetch(pieces, sessions(4), 6, pieceByPiece(async (_s, p: Piece) => {
    const index = pieces.indexOf(p);
    inFlightAhead = Math.max(inFlightAhead, index - delivered);
    await sleep((index * 7) % 5);
    return Buffer.from(String(index));
  }));
  const seen: string[] = [];
  for (let n = await fetch.next(); n; n = await fetch.next()) {
    seen.push((n.data as Buffer).toString());
    delivered++;
  }
  assert.deepEqual(seen, pieces.map((_, i) => String(i)));
  assert.ok(inFlightAhead <= 6, `at most the window ahead of what was handed out (${inFlightAhead})`);
});

test('a failing fetch is what the consumer gets; no worker starts another piece after it', async () => {
  const pieces = planPieces(Array.from({ length: 30 }, (_, i) => file(`f${i}`, 100)), 100);
  let started = 0;
  const fetch = new OrderedFetch(pieces, sessions(3), 30, pieceByPiece(async (_s, p: Piece) => {
    started++;
    if (pieces.indexOf(p) === 2) throw new Error('connection killed');
    await sleep(5);
    return Buffer.alloc(1);
  }));
  await assert.rejects(async () => {
    while (await fetch.next());
  }, /connection killed/);
  await sleep(20);
  assert.ok(started <= 4, `started ${started}`);
});

test('runs: a worker takes up to `run` consecutive pieces, each handed on as it arrives; never more than the window ahead', async () => {
  const pieces = planPieces(Array.from({ length: 40 }, (_, i) => file(`f${i}`, 100 + i)), 100);
  const runs: number[][] = [];
  let taken = 0;
  let delivered = 0;
  let ahead = 0;
  const fetch = new OrderedFetch(
    pieces,
    sessions(3),
    12,
    async (_s, run, deliver) => {
      const first = pieces.indexOf(run[0]);
      runs.push(run.map((p) => pieces.indexOf(p)));
      taken += run.length;
      ahead = Math.max(ahead, taken - delivered);
      // Rows stream: the first piece of the run is usable before the run ends.
      for (let k = 0; k < run.length; k++) {
        await sleep(((first + k) * 3) % 4);
        deliver(k, Buffer.from(String(first + k)));
      }
    },
    4,
  );
  const seen: string[] = [];
  for (let n = await fetch.next(); n; n = await fetch.next()) {
    seen.push((n.data as Buffer).toString());
    delivered++;
  }
  assert.deepEqual(seen, pieces.map((_, i) => String(i)));
  for (const r of runs) {
    assert.ok(r.length >= 1 && r.length <= 4, `run of ${r.length}`);
    assert.deepEqual(r, r.map((_, k) => r[0] + k), 'consecutive');
  }
  assert.ok(runs.some((r) => r.length === 4), 'full runs are taken');
  // + 1: the piece next() has handed out but this loop has not counted yet.
  assert.ok(ahead <= 12 + 1, `at most the window ahead (${ahead})`);
});

test('a run that ends before delivering all its pieces fails the fetch', async () => {
  const pieces = planPieces(Array.from({ length: 8 }, (_, i) => file(`f${i}`, 100)), 100);
  const fetch = new OrderedFetch(pieces, sessions(1), 8, async (_s, run, deliver) => deliver(0, Buffer.alloc(1)), 4);
  await assert.rejects(async () => {
    while (await fetch.next());
  }, /a run of 4 pieces ended after 1/);
});
