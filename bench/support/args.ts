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
