/**
 * Builds one small JSON value from JsonTokenizer events (./json-tokenizer.ts),
 * as JSON.parse would (objects keep JSON.parse's key order and last-wins
 * duplicates; `__proto__` is an ordinary key), except that containers nested
 * deeper than `maxDepth` below the value come as empty placeholders of the
 * same type: a file entry's fields are wanted, not an attacker's 50,000
 * nested arrays; and containers keep only their first `maxMembers` members
 * (later values of a key already kept still replace it), so that one
 * entry of a million fields costs no more than one of `maxMembers`. Pure.
 *
 * Feed it events from the value's first one on; `done` turns true when the
 * value is complete, and `value` holds it.
 */
import type { JsonHandler } from './json-tokenizer';

type Container = { kind: 'object'; value: Record<string, unknown>; key: string; members: number } | { kind: 'array'; value: unknown[] };

export class JsonValueBuilder implements JsonHandler {
  value: unknown = undefined;
  done = false;
  private readonly open: Container[] = [];
  /** Levels of a skipped container still open. */
  private skipping = 0;

  constructor(
    private readonly maxDepth = 0,
    private readonly maxMembers = Infinity,
  ) {}

  startObject(): void {
    this.start({ kind: 'object', value: Object.create(null) as Record<string, unknown>, key: '', members: 0 });
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
      if (top.value.length < this.maxMembers) top.value.push(v);
    } else if (top.key in top.value) {
      top.value[top.key] = v;
    } else if (top.members < this.maxMembers) {
      top.members++;
      top.value[top.key] = v;
    }
  }
}
