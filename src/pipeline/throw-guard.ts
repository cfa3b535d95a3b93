/**
 * guardThrows(stage): a stage whose _transform, _write or _writev throws
 * synchronously (instead of passing the error to its callback) is destroyed
 * with that error, so the pipeline fails with it and cleans up.
 *
 * Node 20 calls those three with no try around them (it does catch a throw
 * in _final, and in a Transform's _flush, which it calls from the same
 * place): a throw surfaces in whatever pushed the event. Inside pgbb's own
 * code it is caught by luck of timing; from Node's flow() (a source's queued
 * events) it is an uncaught exception that kills the process with the
 * target half-written. compose() guards every observer and the sink, the
 * stages a library user may bring. An async method whose promise rejects is
 * not covered (Node ignores what these methods return). The wrapper adds a
 * try per call and allocates nothing.
 */
import { Duplex, Transform, Writable } from 'node:stream';

const METHODS = ['_transform', '_write', '_writev'] as const;
const GUARDED = Symbol('pgbb.throwGuard');
const NODE_OWN = new Set<unknown>([Transform, Duplex, Writable].flatMap((k) => METHODS.map((m) => (k.prototype as unknown as Record<string, unknown>)[m])));

type Stage = { [GUARDED]?: true; destroy(err: Error): void } & Record<(typeof METHODS)[number], unknown>;

export function guardThrows<S extends Duplex | Writable>(stage: S): S {
  const s = stage as unknown as Stage;
  if (s[GUARDED]) return stage;
  s[GUARDED] = true;
  for (const name of METHODS) {
    const inner = s[name];
    // Node's own (Transform's _write calls the guarded _transform) need none.
    if (typeof inner !== 'function' || NODE_OWN.has(inner)) continue;
    // At most three arguments (_transform(chunk, encoding, callback)); no rest array per call.
    s[name] = function guarded(this: Stage, a: unknown, b: unknown, c: unknown): unknown {
      try {
        return (inner as (a: unknown, b: unknown, c: unknown) => unknown).call(this, a, b, c);
      } catch (err) {
        this.destroy(err instanceof Error ? err : new Error(String(err)));
        return undefined;
      }
    };
  }
  return stage;
}
