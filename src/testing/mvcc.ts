import { type Event, Event_EventType, type KeyValue } from "../../gen/mvccpb/kv.js";
import { orderedKey } from "../core/bytes.js";

/** The key of a string `orderedKey` made. */
export function keyBytes(key: string): Uint8Array {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

/** Keys as etcd reads a key and range end: one key (end undefined), [start, end), or (end "") every key from start on. */
export interface KeyRange {
  start: string;
  end: string | undefined;
}

/** The keys a request's key and range_end cover: an empty end is the key alone, "\0" every key from it on. */
export function keyRange(key: Uint8Array, rangeEnd: Uint8Array): KeyRange {
  const start = orderedKey(key);
  if (rangeEnd.length === 0) return { start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: "" };
  return { start, end: orderedKey(rangeEnd) };
}

export function inRange(range: KeyRange, key: string): boolean {
  if (range.end === undefined) return key === range.start;
  return key >= range.start && (range.end === "" || key < range.end);
}

/** The first index of `sorted` whose key is not below `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < key) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** One change of a key: what a put wrote, or a delete (its tombstone: the key and the revision). */
interface Change {
  revision: bigint;
  kv: KeyValue;
  deleted: boolean;
}

/** The events of one revision, in the order its write made them. */
export interface RevisionEvents {
  readonly revision: bigint;
  events: Event[];
}

/**
 * etcd's multi-version store: every key's history, revision by revision, and the events of each
 * revision for watchers that start in the past, until a compaction drops what is older. Each write
 * (a put, a delete, a transaction, a lease revocation) makes at most one revision, whatever it
 * changes; one that changes nothing makes none.
 */
export class Mvcc {
  /** The revision of the last write: 1 for an empty store, as etcd's. */
  revision = 1n;
  /** The revision of the last compaction (-1 before the first): reads below it fail with ErrCompacted. */
  compacted = -1n;
  private readonly histories = new Map<string, Change[]>();
  /** Every key with a history, in byte order. */
  private keys: string[] = [];
  /** The events of every revision a compaction left, oldest first. */
  private readonly log: RevisionEvents[] = [];
  /** The keys attached to each lease. */
  private readonly leaseKeys = new Map<bigint, Set<string>>();
  /** The events of the write under way; undefined between writes. */
  private pending: Event[] | undefined;

  /** @param committed told of each revision as its write ends, with its events. */
  constructor(private readonly committed: (revision: RevisionEvents) => void) {}

  /** The revision reads see: inside a write that changed something already, the one it writes. */
  get readRevision(): bigint {
    return this.pending?.length ? this.revision + 1n : this.revision;
  }

  /** A key as it was at `revision`, if it existed then. */
  get(key: string, revision: bigint): KeyValue | undefined {
    const history = this.histories.get(key);
    if (!history) return undefined;
    for (let i = history.length - 1; i >= 0; i--) {
      const change = history[i]!;
      if (change.revision <= revision) return change.deleted ? undefined : change.kv;
    }
    return undefined;
  }

  /** The keys of `range` that existed at `revision`, in key order. */
  range(range: KeyRange, revision: bigint): KeyValue[] {
    if (range.end === undefined) {
      const kv = this.get(range.start, revision);
      return kv ? [kv] : [];
    }
    const found: KeyValue[] = [];
    for (let i = lowerBound(this.keys, range.start); i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (range.end !== "" && key >= range.end) break;
      const kv = this.get(key, revision);
      if (kv) found.push(kv);
    }
    return found;
  }

  /** The keys attached to a lease, in key order. */
  keysOf(lease: bigint): Uint8Array[] {
    return [...(this.leaseKeys.get(lease) ?? [])].sort().map(keyBytes);
  }

  /**
   * Runs `body` as one write: every change it makes gets the next revision, which is committed
   * (and told to watchers) when it returns, if it changed anything.
   */
  write<T>(body: () => T): T {
    this.pending = [];
    try {
      return body();
    } finally {
      const events = this.pending;
      this.pending = undefined;
      if (events.length > 0) {
        this.revision++;
        const revision: RevisionEvents = { revision: this.revision, events };
        this.log.push(revision);
        this.committed(revision);
      }
    }
  }

  /** Writes a key (inside `write`), attached to `lease` (0n for none). */
  put(key: Uint8Array, value: Uint8Array, lease: bigint): void {
    const events = this.writing();
    const revision = this.revision + 1n;
    const name = orderedKey(key);
    const previous = this.get(name, revision);
    // Copies: a decoded request's fields are views of its whole message.
    const kv: KeyValue = {
      key: key.slice(),
      value: value.slice(),
      lease,
      modRevision: revision,
      createRevision: previous?.createRevision ?? revision,
      version: (previous?.version ?? 0n) + 1n,
    };
    this.record(name, { revision, kv, deleted: false });
    this.moveLease(name, previous?.lease ?? 0n, lease);
    events.push({ type: Event_EventType.PUT, kv, prevKv: undefined });
  }

  /** Deletes the keys of `range` (inside `write`); how many there were. */
  deleteRange(range: KeyRange): number {
    const events = this.writing();
    const revision = this.revision + 1n;
    const deleted = this.range(range, revision);
    for (const kv of deleted) {
      const name = orderedKey(kv.key);
      // A tombstone, and a delete event, carry the key and the revision only, as etcd's.
      const tombstone: KeyValue = { key: kv.key, value: new Uint8Array(), lease: 0n, modRevision: revision, createRevision: 0n, version: 0n };
      this.record(name, { revision, kv: tombstone, deleted: true });
      this.moveLease(name, kv.lease, 0n);
      events.push({ type: Event_EventType.DELETE, kv: tombstone, prevKv: undefined });
    }
    return deleted.length;
  }

  /**
   * Drops the history before `revision` as etcd's compaction does: of each key, the changes
   * after it and the last one at or before it, unless that one is a delete before it (which ends
   * a life of the key that is dropped whole); of the events, those of the changes kept.
   */
  compact(revision: bigint): void {
    this.compacted = revision;
    for (const [name, history] of this.histories) {
      let latest = -1;
      while (latest + 1 < history.length && history[latest + 1]!.revision <= revision) latest++;
      if (latest < 0) continue;
      const { deleted, revision: at } = history[latest]!;
      history.splice(0, deleted && at < revision ? latest + 1 : latest);
      if (history.length === 0) this.histories.delete(name);
    }
    this.keys = this.keys.filter((key) => this.histories.has(key));
    let dropped = 0;
    while (dropped < this.log.length && this.log[dropped]!.revision < revision) dropped++;
    this.log.splice(0, dropped);
    const first = this.log[0];
    if (first?.revision === revision) first.events = first.events.filter((event) => this.histories.get(orderedKey(event.kv!.key))?.some((change) => change.kv === event.kv));
  }

  /** The revisions from `revision` on that a compaction left, oldest first. */
  since(revision: bigint): RevisionEvents[] {
    let low = 0;
    let high = this.log.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.log[mid]!.revision < revision) low = mid + 1;
      else high = mid;
    }
    return this.log.slice(low);
  }

  private writing(): Event[] {
    if (!this.pending) throw new Error("a change of the store outside a write");
    return this.pending;
  }

  private record(name: string, change: Change): void {
    let history = this.histories.get(name);
    if (!history) {
      history = [];
      this.histories.set(name, history);
      this.keys.splice(lowerBound(this.keys, name), 0, name);
    }
    history.push(change);
  }

  private moveLease(name: string, from: bigint, to: bigint): void {
    if (from === to) return;
    if (from !== 0n) {
      const keys = this.leaseKeys.get(from);
      keys?.delete(name);
      if (keys?.size === 0) this.leaseKeys.delete(from);
    }
    if (to !== 0n) {
      let keys = this.leaseKeys.get(to);
      if (!keys) this.leaseKeys.set(to, (keys = new Set()));
      keys.add(name);
    }
  }
}
