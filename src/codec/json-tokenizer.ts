/**
 * A streaming JSON tokenizer (RFC 8259, as JSON.parse accepts it): text in,
 * in pieces split anywhere; structure out, as calls on a handler, as soon
 * as each token is complete. Pure; no recursion, so nesting depth costs one
 * byte per level, never the stack.
 *
 *   const t = new JsonTokenizer(handler);
 *   t.write(text); …; t.end();     JsonSyntaxError at the first error
 *
 * Scalars come with their source text (`raw`), so that a caller can read a
 * number JSON.parse would round (a uint64) exactly. Keys and string values
 * may contain lone surrogates from \u escapes, as with JSON.parse.
 *
 * `maxToken` (characters) refuses a longer string or number, the one thing
 * held whole: text pgbb did not write could otherwise make one token of all
 * its bytes. A literal longer than `false` is refused at its sixth letter.
 * `maxDepth` refuses deeper nesting (each level costs a byte).
 */

export class JsonSyntaxError extends Error {}

export interface JsonHandler {
  startObject(): void;
  endObject(): void;
  startArray(): void;
  endArray(): void;
  key(name: string): void;
  scalar(value: string | number | boolean | null, raw: string): void;
}

// What may come next.
const VALUE = 0;
const FIRST_KEY = 1; // after '{': a key or '}'
const KEY = 2; // after ',' in an object
const COLON = 3;
const AFTER_VALUE = 4; // ',' or the close of the container, or the end of the document
const FIRST_VALUE = 5; // after '[': a value or ']'
const DONE = 6;

// Inside a token.
const NONE = 0;
const STRING = 1;
const NUMBER = 2;
const LITERAL = 3;

const NUMBER_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const NUMBER_CHAR = /[-+.eE0-9]/;
const LITERALS: Record<string, boolean | null> = { true: true, false: false, null: null };
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export class JsonTokenizer {
  private expect = VALUE;
  private token = NONE;
  /** 1 = object, 2 = array, per open container. */
  private stack = new Uint8Array(64);
  private depth = 0;
  private text = '';
  private stringIsKey = false;
  /** Within a string: '' or a backslash escape read so far ('\\', '\\u12'). */
  private escape = '';
  private position = 0;

  constructor(
    private readonly handler: JsonHandler,
    private readonly maxToken = Infinity,
    private readonly maxDepth = Infinity,
  ) {}

  write(chunk: string): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.token === STRING) {
        i = this.readString(chunk, i);
        continue;
      }
      const c = chunk[i];
      if (this.token !== NONE) {
        if (this.token === NUMBER ? NUMBER_CHAR.test(c) : c >= 'a' && c <= 'z') {
          this.text += c;
          i++;
          this.position++;
          if (this.token === LITERAL ? this.text.length > 5 : this.text.length > this.maxToken) this.finishToken();
          continue;
        }
        this.finishToken();
      }
      i++;
      this.position++;
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
      this.structural(c);
    }
  }

  end(): void {
    if (this.token === NUMBER || this.token === LITERAL) this.finishToken();
    if (this.expect !== DONE || this.token !== NONE) throw new JsonSyntaxError('Unexpected end of JSON input');
  }

  private structural(c: string): void {
    const e = this.expect;
    if (c === '"') {
      if (e === FIRST_KEY || e === KEY) this.stringIsKey = true;
      else if (e === VALUE || e === FIRST_VALUE) this.stringIsKey = false;
      else this.unexpected(c);
      this.token = STRING;
      this.text = '';
      return;
    }
    if (e === COLON) {
      if (c !== ':') this.unexpected(c);
      this.expect = VALUE;
      return;
    }
    if (e === AFTER_VALUE) {
      const top = this.stack[this.depth - 1];
      if (c === ',' && this.depth > 0) this.expect = top === 1 ? KEY : VALUE;
      else if ((c === '}' && top === 1) || (c === ']' && top === 2)) this.close();
      else this.unexpected(c);
      return;
    }
    if (e === FIRST_KEY && c === '}') return this.close();
    if (e === FIRST_VALUE && c === ']') return this.close();
    if (e !== VALUE && e !== FIRST_VALUE) this.unexpected(c);
    if (c === '{' || c === '[') {
      if (this.depth === this.maxDepth) throw new JsonSyntaxError(`Nested deeper than ${this.maxDepth} levels at position ${this.position - 1}`);
      if (this.depth === this.stack.length) {
        const s = new Uint8Array(this.stack.length * 2);
        s.set(this.stack);
        this.stack = s;
      }
      this.stack[this.depth++] = c === '{' ? 1 : 2;
      this.expect = c === '{' ? FIRST_KEY : FIRST_VALUE;
      if (c === '{') this.handler.startObject();
      else this.handler.startArray();
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      this.token = NUMBER;
      this.text = c;
    } else if (c >= 'a' && c <= 'z') {
      this.token = LITERAL;
      this.text = c;
    } else {
      this.unexpected(c);
    }
  }

  private close(): void {
    const top = this.stack[--this.depth];
    this.afterValue();
    if (top === 1) this.handler.endObject();
    else this.handler.endArray();
  }

  private afterValue(): void {
    this.expect = this.depth === 0 ? DONE : AFTER_VALUE;
  }

  private finishToken(): void {
    const raw = this.text;
    this.text = '';
    const kind = this.token;
    this.token = NONE;
    if (kind === NUMBER) {
      if (raw.length > this.maxToken) throw new JsonSyntaxError(`Number longer than ${this.maxToken} characters (the most read) before position ${this.position}`);
      if (!NUMBER_TEXT.test(raw)) throw new JsonSyntaxError(`Unexpected number "${raw.slice(0, 40)}" at position ${this.position - raw.length}`);
      this.afterValue();
      this.handler.scalar(Number(raw), raw);
    } else {
      if (!(raw in LITERALS)) throw new JsonSyntaxError(`Unexpected token "${raw.slice(0, 40)}" at position ${this.position - raw.length}`);
      this.afterValue();
      this.handler.scalar(LITERALS[raw], raw);
    }
  }

  /** Reads string content from `i`; returns where it stopped (past the closing quote, or the chunk's end). */
  private readString(chunk: string, i: number): number {
    const n = chunk.length;
    while (i < n) {
      if (this.escape) {
        this.escape += chunk[i++];
        this.position++;
        this.takeEscape();
        continue;
      }
      // A run of plain characters at once.
      let j = i;
      while (j < n) {
        const code = chunk.charCodeAt(j);
        if (code === 0x22 || code === 0x5c) break;
        if (code < 0x20) {
          this.position += j - i;
          throw new JsonSyntaxError(`Bad control character in string literal at position ${this.position}`);
        }
        j++;
      }
      this.text += chunk.slice(i, j);
      this.position += j - i;
      this.checkLength();
      if (j === n) return n;
      this.position++;
      if (chunk.charCodeAt(j) === 0x5c) {
        this.escape = '\\';
        i = j + 1;
        continue;
      }
      const s = this.text;
      this.text = '';
      this.token = NONE;
      if (this.stringIsKey) {
        this.expect = COLON;
        this.handler.key(s);
      } else {
        this.afterValue();
        this.handler.scalar(s, s);
      }
      return j + 1;
    }
    return n;
  }

  private takeEscape(): void {
    const e = this.escape;
    if (e.length === 2 && e[1] !== 'u') {
      const c = ESCAPES[e[1]];
      if (c === undefined) throw new JsonSyntaxError(`Bad escaped character in JSON at position ${this.position - 1}`);
      this.text += c;
      this.escape = '';
    } else if (e.length === 6) {
      if (!/^\\u[0-9a-fA-F]{4}$/.test(e)) throw new JsonSyntaxError(`Bad Unicode escape in JSON at position ${this.position - 6}`);
      this.text += String.fromCharCode(parseInt(e.slice(2), 16));
      this.escape = '';
    }
    this.checkLength();
  }

  private checkLength(): void {
    if (this.text.length > this.maxToken) throw new JsonSyntaxError(`String longer than ${this.maxToken} characters (the most read) before position ${this.position}`);
  }

  private unexpected(c: string): never {
    throw new JsonSyntaxError(`Unexpected token "${c}" at position ${this.position - 1}`);
  }
}
