import type { KeyValue } from "../api/kv.js";
import { type Bytes, FROM_KEY_END, describe, orderedKey, prefixEnd, toBytes } from "../core/bytes.js";
import { InvalidArgumentError } from "../core/errors.js";

/**
 * Which keys a cache holds, or a list reads: every key under `prefix` (every key at all when it is
 * empty), or the keys in [`key`, `rangeEnd`), where a `rangeEnd` of "\0" means every key from `key` on.
 */
export type CacheRange =
  | {
      /** Every key under this prefix. */
      prefix: Bytes;
    }
  | {
      /** The first key of the range. */
      key: Bytes;
      /** The end of the range, exclusive. */
      rangeEnd: Bytes;
    };

/** A range as wire bytes (for etcd) and as ids (for the index); `endId` undefined: no end. */
export interface KeyRange {
  key: Uint8Array;
  /** The range end as etcd takes it: "\0" for no end. */
  end: Uint8Array;
  startId: string;
  endId: string | undefined;
}

function isFromKeyEnd(end: Uint8Array): boolean {
  return end.length === 1 && end[0] === 0;
}

/**
 * The range a selection names, checked; `what` names the argument in errors ("cache", "cache list").
 * Exactly one of `prefix` and `key` + `rangeEnd`; `optional` lets neither stand for undefined.
 */
export function parseRange(selection: unknown, what: string, optional: true): KeyRange | undefined;
export function parseRange(selection: unknown, what: string, optional?: false): KeyRange;
export function parseRange(selection: unknown, what: string, optional = false): KeyRange | undefined {
  if (typeof selection !== "object" || selection === null) throw new InvalidArgumentError(`${what} range`, `must be { prefix } or { key, rangeEnd }, got ${describe(selection)}`);
  const { prefix, key, rangeEnd } = selection as { prefix?: unknown; key?: unknown; rangeEnd?: unknown };
  if (prefix !== undefined) {
    if (key !== undefined || rangeEnd !== undefined) throw new InvalidArgumentError(`${what} range`, "takes either prefix or key and rangeEnd, not both");
    const bytes = toBytes(prefix as Bytes, `${what} prefix`);
    // The empty prefix is the whole keyspace, which etcd spells from "\0" to no end.
    if (bytes.length === 0) return fromBytes(FROM_KEY_END, FROM_KEY_END);
    return fromBytes(bytes, prefixEnd(bytes));
  }
  if (key === undefined && rangeEnd === undefined) {
    if (optional) return undefined;
    throw new InvalidArgumentError(`${what} range`, "must name a prefix, or a key and a rangeEnd");
  }
  if (key === undefined) throw new InvalidArgumentError(`${what} key`, "must be given with rangeEnd");
  if (rangeEnd === undefined) throw new InvalidArgumentError(`${what} rangeEnd`, "must be given with key (\"\\0\" for every key from key on)");
  const start = toBytes(key as Bytes, `${what} key`);
  const end = toBytes(rangeEnd as Bytes, `${what} rangeEnd`);
  if (start.length === 0) throw new InvalidArgumentError(`${what} key`, "must not be empty (use { prefix: \"\" } for every key)");
  const range = fromBytes(start, end);
  if (range.endId !== undefined && range.endId <= range.startId) throw new InvalidArgumentError(`${what} rangeEnd`, "must sort after key");
  return range;
}

function fromBytes(key: Uint8Array, end: Uint8Array): KeyRange {
  return { key, end, startId: orderedKey(key), endId: isFromKeyEnd(end) ? undefined : orderedKey(end) };
}

/** Whether `inner` lies within `outer`. */
export function contains(outer: KeyRange, inner: KeyRange): boolean {
  if (inner.startId < outer.startId) return false;
  if (outer.endId === undefined) return true;
  return inner.endId !== undefined && inner.endId <= outer.endId;
}

/** Whether the key of `id` lies within `range`. */
export function holds(range: KeyRange, id: string): boolean {
  return id >= range.startId && (range.endId === undefined || id < range.endId);
}

/** What a slice of the index gives. */
export interface Slice {
  kvs: KeyValue[];
  /** True when the limit cut the slice short. */
  more: boolean;
  /** Keys in the range, whatever the limit. */
  count: number;
}

/**
 * Every key's latest value, by id, with the ids in key order for ranges: a sorted array, as most
 * changes update a key that is there already (a Map lookup) and a new or deleted key costs one
 * splice, a memory move of a few microseconds at 100,000 keys.
 */
export class KeyIndex {
  private readonly values = new Map<string, KeyValue>();
  private readonly ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  get(id: string): KeyValue | undefined {
    return this.values.get(id);
  }

  /** Adds a key after every key already held, as a listing in key order gives them. */
  append(kv: KeyValue): void {
    const id = orderedKey(kv.key);
    this.values.set(id, kv);
    this.ids.push(id);
  }

  /** Sets a key's value; returns the one it replaces. */
  put(id: string, kv: KeyValue): KeyValue | undefined {
    const previous = this.values.get(id);
    this.values.set(id, kv);
    if (previous === undefined) this.ids.splice(this.lowerBound(id), 0, id);
    return previous;
  }

  /** Removes a key; returns its value, if it was there. */
  delete(id: string): KeyValue | undefined {
    const previous = this.values.get(id);
    if (previous === undefined) return undefined;
    this.values.delete(id);
    this.ids.splice(this.lowerBound(id), 1);
    return previous;
  }

  /** The keys in `range` in key order, at most `limit` of them (0: all). */
  slice(range: KeyRange, limit: number): Slice {
    const from = this.lowerBound(range.startId);
    const to = range.endId === undefined ? this.ids.length : this.lowerBound(range.endId);
    const count = to - from;
    const taken = limit > 0 && limit < count ? limit : count;
    const kvs = new Array<KeyValue>(taken);
    for (let i = 0; i < taken; i++) kvs[i] = this.values.get(this.ids[from + i]!)!;
    return { kvs, more: taken < count, count };
  }

  /** The first position whose id is not below `id`. */
  private lowerBound(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.ids[mid]! < id) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
