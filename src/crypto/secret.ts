/**
 * A passphrase or identity held so that it cannot leak by accident: it
 * prints, stringifies and JSON-encodes as "[redacted]"; only reveal() gives
 * the value, and only the key code calls it.
 */
import { inspect } from 'node:util';

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret [redacted]';
  }
}
