/** `--name value` and `--flag` from process.argv, for the bench scripts (no dependency on the CLI's parser). */

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

export function numArg(name: string, fallback: number): number {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
  return v;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** Refuses a `--name` that is not in known (a typo would otherwise run the long default). */
export function onlyKnown(known: string[]): void {
  for (const a of process.argv.slice(2)) {
    if (a.startsWith('--') && !known.includes(a.slice(2))) throw new Error(`unknown option ${a} (known: --${known.join(', --')})`);
  }
}
