/**
 * What a fuzz target is (test/fuzz/targets/*.ts export these by name; the
 * worker in ./worker.ts runs them).
 *
 *   setup()             once per run: seeds built with pgbb's own writers
 *   run(rng, ctx, i)    one case: build an input from rng (random or a mutated
 *                       seed), feed it to the code under test, check what came
 *                       out. Returning means the input was accepted; throwing a
 *                       PgbbError means it was rejected properly; anything else
 *                       thrown (TypeError, RangeError, an assertion about the
 *                       output) is a violation.
 *   teardown(ctx)       once after the run: removes temp files setup made
 *   limits              how much one case may grow memory (bytes) before it
 *                       counts as allocating without bound
 */
import type { Rng } from './random';

export interface FuzzLimits {
  /** Growth of process.memoryUsage().arrayBuffers (Buffers) within one case. */
  arrayBuffers?: number;
  /** Growth of the V8 heap within one case. */
  heap?: number;
  /** Growth of the resident set (native allocations: libzstd) within one case. */
  rss?: number;
}

export interface FuzzTarget<C = unknown> {
  setup?(): C | Promise<C>;
  run(rng: Rng, ctx: C, i: number): void | Promise<void>;
  /** After the last case (and after a failed setup): remove what setup made on disk. */
  teardown?(ctx: C | undefined): void | Promise<void>;
  limits?: FuzzLimits;
}

export const MiB = 1024 * 1024;
