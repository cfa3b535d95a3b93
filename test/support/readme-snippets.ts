/**
 * README's library examples as a package user meets them: the ```ts block
 * after a bold lead-in ("**A custom sink**"), type-checked against the
 * package's own declarations (`import … from 'pgbb'` resolved through
 * package.json, as in a user's project), and run with the `pgbb` of this
 * build after named stand-ins (a host, a path) are swapped for the test's.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

const REPO = path.resolve(__dirname, '../../..');

/** The first ```ts block after `lead` in README.md. */
export function readmeSnippet(lead: string): string {
  const text = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const at = text.indexOf(lead);
  if (at < 0) throw new Error(`README.md has no "${lead}"`);
  const m = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`README.md has no ts block after "${lead}"`);
  return m[1]!;
}

/** tsc's diagnostics for the snippets, each a module of a project that depends on pgbb; [] when they compile. */
export function typeCheck(snippets: string[]): string[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbb-readme-'));
  try {
    mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(REPO, path.join(dir, 'node_modules', 'pgbb'));
    symlinkSync(path.join(REPO, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
    const files = snippets.map((s, i) => {
      const f = path.join(dir, `snippet${i}.ts`);
      writeFileSync(f, s);
      return f;
    });
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true, noEmit: true, skipLibCheck: true, types: ['node'], noImplicitOverride: true,
    };
    // Each snippet is an ES module with top-level await, as a user's script would be.
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }');
    const program = ts.createProgram(files, options);
    return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `snippet` with each stand-in replaced (every one must occur), run as an async function body; `tail` is appended (e.g. `return x;`). */
export async function runSnippet(snippet: string, standIns: Array<[string, string]>, tail = ''): Promise<unknown> {
  let code = snippet;
  for (const [from, to] of standIns) {
    if (!code.includes(from)) throw new Error(`the README snippet no longer has ${from}`);
    code = code.split(from).join(to);
  }
  const js = ts.transpileModule(`${code}\n${tail}`, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  const req = (id: string) => require(id === 'pgbb' ? path.join(REPO, 'dist', 'src', 'index.js') : id);
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;
  return new AsyncFunction('require', 'exports', js)(req, {});
}
