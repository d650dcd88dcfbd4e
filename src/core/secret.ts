/** What inspecting or serialising a secret shows. */
const REDACTED = "[redacted]";

/**
 * A value that must not leak into logs: a password, a private key, a token. It is held in a
 * private field, which neither `console.log`/`util.inspect` nor `JSON.stringify` reaches, and
 * shows as "[redacted]" however it is printed; `reveal()` is the one way to read it.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  /** Node's util.inspect (console.log), through the symbol Node registers, so browsers import nothing. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}

/**
 * `raw` with any user:password part of a URL replaced, for an error message that repeats what a
 * caller gave.
 */
export function withoutUserInfo(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/?#]*@/i, "$1[redacted]@");
}
