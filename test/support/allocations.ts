/** Calls of Buffer.allocUnsafe(size) while fn runs (a test's count of what a codec allocates). */
export function allocationsOf(size: number, fn: () => void): number {
  const orig = Buffer.allocUnsafe;
  let n = 0;
  Buffer.allocUnsafe = (len: number) => {
    if (len === size) n++;
    return orig(len);
  };
  try {
    fn();
  } finally {
    Buffer.allocUnsafe = orig;
  }
  return n;
}
