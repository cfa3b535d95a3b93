/**
 * Paths built to collide under plain FNV-1a (offset basis 0x811c9dc5): a Joux
 * multicollision, where at each stage both 6-byte blocks lead FNV-1a to the same
 * state, so all 2^stages concatenations share one 32-bit hash.
 */
const STAGES = [
  ['r072gy', 'or06ph'], ['zdyx02', 'ne4q8y'], ['o7lpqt', 'vp1783'], ['bsghmq', 'h0jkw6'],
  ['q1h8x2', 'viclln'], ['60n3mp', '0ec91b'], ['4bwrf8', 'geo13f'], ['o3zo4w', 'ixuq49'],
  ['rx0rcx', '9bj4aq'], ['29p56i', 'fot77n'], ['by1mq2', 'ng7vzp'], ['dsoch8', '10a96v'],
  ['iqilcp', 'tqc8xd'], ['uzdc2l', 'djba4u'], ['ipflun', '1mmo6l'], ['g5n5s3', 'rml6s1'],
] as const;

/** The 2^stages paths (stages ≤ 16). */
export function fnvCollidingPaths(stages: number): string[] {
  let paths = [''];
  for (const [a, b] of STAGES.slice(0, stages)) paths = paths.flatMap((p) => [p + a, p + b]);
  return paths;
}
