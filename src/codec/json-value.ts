/**
 * Builds one small JSON value from JsonTokenizer events (./json-tokenizer.ts),
 * as JSON.parse would (objects keep JSON.parse's key order and last-wins
 * duplicates; `__proto__` is an ordinary key), except that containers nested
 * deeper than `maxDepth` below the value come as empty placeholders of the
 * same type: a file entry's fields are wanted, not an attacker's 50,000
 * nested arrays. Pure.
 *
 * Feed it events from the value's first one on; `done` turns true when the
 * value is complete, and `value` holds it.
 */
import type { JsonHandler } from './json-tokenizer';

type Container = { kind: 'object'; value: Record<string, unknown>; key: string } | { kind: 'array'; value: unknown[] };

export class JsonValueBuilder implements JsonHandler {
  value: unknown = undefined;
  done = false;
  private readonly open: Container[] = [];
  /** Levels of a skipped container still open. */
  private skipping = 0;

  constructor(private readonly maxDepth = 0) {}

  startObject(): void {
    this.start({ kind: 'object', value: Object.create(null) as Record<string, unknown>, key: '' });
  }

  startArray(): void {
    this.start({ kind: 'array', value: [] });
  }

  endObject(): void {
    this.end();
  }

  endArray(): void {
    this.end();
  }

  key(name: string): void {
    if (this.skipping) return;
    const top = this.open[this.open.length - 1];
    if (top?.kind === 'object') top.key = name;
  }

  scalar(value: string | number | boolean | null, _raw?: string): void {
    if (!this.skipping) this.add(value);
  }

  private start(c: Container): void {
    if (this.skipping) return void this.skipping++;
    if (this.open.length > this.maxDepth) {
      this.add(c.value);
      this.skipping = 1;
      return;
    }
    this.open.push(c);
  }

  private end(): void {
    if (this.skipping) return void this.skipping--;
    const c = this.open.pop()!;
    this.add(c.value);
  }

  private add(v: unknown): void {
    const top = this.open[this.open.length - 1];
    if (!top) {
      this.value = v;
      this.done = true;
    } else if (top.kind === 'array') {
      top.value.push(v);
    } else {
      top.value[top.key] = v;
    }
  }
}
