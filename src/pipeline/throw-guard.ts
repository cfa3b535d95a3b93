/**
 * guardThrows(stage): a stage whose _transform, _flush, _write, _writev or
 * _final throws (instead of passing the error to its callback) is destroyed
 * with that error, so the pipeline fails with it and cleans up.
 *
 * Node calls those methods without a try around them: a throw surfaces in
 * whatever pushed the event — inside pgbb's own code it is caught by luck of
 * timing, from Node's flow() (a source's queued events) it is an uncaught
 * exception that kills the process with the target half-written. compose()
 * guards every observer and the sink, the stages a library user may bring.
 * The wrapper adds a try per call and allocates nothing.
 */
import { Duplex, Transform, Writable } from 'node:stream';

const METHODS = ['_transform', '_flush', '_write', '_writev', '_final'] as const;
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
