/**
 * Targets that misbehave on purpose, for test/fuzz/runner.test.ts: the fuzz
 * runner must catch each kind of violation it promises to catch.
 */
import { TarFormatError } from '../../../src/errors';
import type { FuzzTarget } from '../support/target';

/** Case 3 never returns. */
export const hang: FuzzTarget = {
  run(_rng, _ctx, i) {
    if (i === 3) for (;;);
  },
};

/** Every case throws a TypeError. */
export const typeError: FuzzTarget = {
  run() {
    (null as unknown as { x: number }).x;
  },
};

/** Case 1 keeps 100 MiB of Buffers. */
const kept: Buffer[] = [];
export const allocation: FuzzTarget = {
  run(_rng, _ctx, i) {
    if (i === 1) kept.push(Buffer.alloc(100 * 1024 * 1024));
  },
};

/** A PgbbError whose message spans lines. */
export const multiline: FuzzTarget = {
  run() {
    throw new TarFormatError('first line\nsecond line');
  },
};

/** An error thrown outside the case's promise. */
export const uncaught: FuzzTarget = {
  async run(_rng, _ctx, i) {
    if (i === 0) setImmediate(() => { throw new RangeError('late'); });
    await new Promise((r) => setTimeout(r, 5));
  },
};

/** Rejections with PgbbErrors only: no violation. */
export const clean: FuzzTarget = {
  run(rng) {
    if (rng.chance(0.5)) throw new TarFormatError('rejected');
  },
};
