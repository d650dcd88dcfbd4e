import { InvalidArgumentError } from "./errors.js";

/** Keys and values may be given as text (encoded as UTF-8) or as raw bytes. */
export type Bytes = string | Uint8Array;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function toBytes(input: Bytes, what: string): Uint8Array {
  if (typeof input === "string") return encoder.encode(input);
  if (input instanceof Uint8Array) return input;
  throw new InvalidArgumentError(what, `must be a string or a Uint8Array, got ${describe(input)}`);
}

export function utf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? `a ${value.constructor?.name ?? "object"}` : `${typeof value} ${String(value)}`;
}

/** "\0" as a range end: every key at or after the start key. */
export const FROM_KEY_END = new Uint8Array([0]);

/**
 * The smallest key greater than every key that starts with `prefix`: the prefix with its last
 * byte below 0xff incremented and what follows dropped. A prefix of only 0xff bytes (or the empty
 * prefix) has no such key, so the range runs to the end of the keyspace.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]! += 1;
      return end;
    }
  }
  return FROM_KEY_END;
}

/**
 * A key as a string of one char per byte: such strings compare in the order etcd sorts keys in
 * (byte by byte), and serve as Map keys.
 */
export function orderedKey(bytes: Uint8Array): string {
  let key = "";
  // fromCharCode takes its bytes as arguments: a long key goes in slices the stack can hold.
  for (let i = 0; i < bytes.length; i += 0x4000) key += String.fromCharCode(...bytes.subarray(i, i + 0x4000));
  return key;
}
