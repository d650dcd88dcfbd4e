import { Status } from "nice-grpc-common";
import type { KV, KeyValue } from "../api/kv.js";
import { WatchCompactedError, type Watcher, type WatchEvent, type WatchOptions, type WatchResponse } from "../api/watch.js";
import { type Bytes, describe, orderedKey, toBytes } from "../core/bytes.js";
import { checkSignal } from "../core/call-checks.js";
import { CallCanceledError, EndpointError, ErrCompacted, EtcdServerError, InvalidArgumentError, TransportError } from "../core/errors.js";
import { type Int64, toNonNegativeInt64 } from "../core/int64.js";
import { unref } from "../core/timers.js";
import { CacheClosedError, RevisionTooOldError } from "./errors.js";
import { type CacheEvents, CacheFeed, type CacheReset, throwLater } from "./feed.js";
import { type CacheRange, contains, holds, KeyIndex, type KeyRange, parseRange } from "./keys.js";
import { ChangeWindow } from "./window.js";

/**
 * What a cache needs of a client: reads, the paginated listing and watch. A `Client`, or a
 * namespace of one (`client.namespace("app/")`), has them.
 */
export interface CacheClient {
  /** Lists the range (iterate) and learns etcd's revision (get). */
  readonly kv: Pick<KV, "get" | "iterate">;
  /** Follows the range after the listing. */
  watch(key: Bytes, options?: WatchOptions): CacheWatcher;
}

/** What a cache needs of a watcher. */
export type CacheWatcher = Pick<Watcher, "subscribe" | "requestProgress" | "progressRequestsUsable" | "cancel">;

/** How a cache is set up. */
export interface CacheOptions {
  /** How many recent events the cache keeps for feeds that start at an earlier revision. Default 10,000. */
  windowSize?: number;
  /** Keys per request of the listing when etcd has no RangeStream (before 3.7, or over the gateway). Default 1000. */
  pageSize?: number;
  /** Closes the cache when it fires; while `createCache` is still listing, it rejects with CallCanceledError. */
  signal?: AbortSignal;
  /**
   * Called when the cache listed its keys anew because the history it needed was compacted (its
   * feeds get a `reset` update at the same time). A throw is reported as an uncaught exception.
   */
  onReset?: (reset: CacheRelist) => void;
}

/** What `onReset` is told of a relist. */
export interface CacheRelist {
  /** The revision the cache listed its keys at. */
  revision: bigint;
  /** The oldest revision etcd still had when the cache found its history compacted. */
  compactRevision: bigint;
}

/** Options of a read. */
export interface CacheReadOptions {
  /**
   * Answer only once the cache has applied every change etcd had made when the read was asked:
   * first a linearizable read learns etcd's current revision, then the cache waits for it. By
   * default a read answers at once from what the cache holds, without a round trip.
   */
  consistent?: boolean;
  /** Ends the wait of a consistent read, which then rejects with CallCanceledError. */
  signal?: AbortSignal;
}

/**
 * Options of a list: which keys (the whole cached range by default; a range must lie within it)
 * and how many at most.
 */
export interface CacheListOptions extends CacheReadOptions {
  /** Every cached key under this prefix. */
  prefix?: Bytes;
  /** With `rangeEnd`: the cached keys in [key, rangeEnd). */
  key?: Bytes;
  /** With `key`: the end of the range, exclusive. */
  rangeEnd?: Bytes;
  /** Most keys to return; 0 (the default) means all. */
  limit?: number;
}

/** Options of `waitForRevision`. */
export interface CacheWaitOptions {
  /** Ends the wait, which then rejects with CallCanceledError. */
  signal?: AbortSignal;
}

/** Options of a feed. */
export interface CacheChangesOptions {
  /**
   * The first revision whose changes to deliver: one the cache's window still holds (older ones
   * throw RevisionTooOldError), or a later one. By default the revision after the cache's current one.
   */
  fromRevision?: Int64;
  /** Ends the feed; its iteration then throws CallCanceledError. */
  signal?: AbortSignal;
  /** The most updates held for a reader that has not taken them; past it the feed fails with WatchOverflowError. Default 10,000. */
  maxBuffered?: number;
}

/** A key as a cache read found it. */
export interface CacheGetResult {
  /** The revision the answer reflects: the cache holds every change up to it. */
  revision: bigint;
  /** The key, or undefined when it does not exist at `revision`. */
  kv: KeyValue | undefined;
}

/** Keys as a cache read found them. */
export interface CacheListResult {
  /** The revision the answer reflects: the cache holds every change up to it. */
  revision: bigint;
  /** The keys in key order. */
  kvs: KeyValue[];
  /** True when `limit` cut the answer short. */
  more: boolean;
  /** Keys in the range, whatever the limit. */
  count: number;
}

const DEFAULT_WINDOW_SIZE = 10_000;
const DEFAULT_MAX_BUFFERED = 10_000;
/** Between asks for progress (or checks over the gateway) while someone waits for a revision. */
const FIRST_NUDGE_MS = 10;
const MAX_NUDGE_MS = 1000;
/** Between attempts to list again after a failure that may pass. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;

interface Waiter {
  revision: bigint;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Failures after which listing again may succeed: a member unreachable or without a leader, history compacted meanwhile. */
function mayPass(err: unknown): boolean {
  if (err instanceof ErrCompacted || err instanceof EndpointError) return true;
  return (err instanceof TransportError || err instanceof EtcdServerError) && err.code === Status.UNAVAILABLE;
}

function checkCount(value: unknown, what: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) throw new InvalidArgumentError(what, `must be an integer of at least ${min}, got ${describe(value)}`);
  return value;
}

/**
 * A local copy of every key in a prefix or range, fed by one watch: reads from it cost no round
 * trip, and say the revision they reflect. Made by `createCache`.
 *
 * It lists the range once at a revision R (the SDK's paginated `kv.iterate`), then watches from
 * R+1, so it holds each key's latest value with no change missed or applied twice: the SDK's watch
 * resumes after a broken stream, a killed member or a new leader from the revision after the last
 * one delivered. When that revision was compacted meanwhile, the cache lists again, calls
 * `onReset`, and gives its feeds a `reset` update. It keeps the last `windowSize` events, so that
 * a feed can start at an earlier revision.
 *
 * Over etcd's HTTP gateway, which cannot ask a watch for progress, and against a cluster with a
 * member whose etcd may answer one ahead of its events (before 3.4.31, or 3.5 before 3.5.13), a
 * consistent read whose revision brought no change to the cached keys is confirmed by two reads
 * at that revision (how many keys, and whether any changed since the cache's revision) instead:
 * etcd reads the whole range for the second, so consistent reads cost more there.
 */
export class WatchCache implements AsyncDisposable {
  private index = new KeyIndex();
  /**
   * Keys of changes at or below the cache's revision: over the gateway a check can show that
   * nothing in the range changed up to a revision the watch has not reached, and the cache then
   * moves to it. Changes the watch still brings from before it can only be keys created and
   * deleted again in between; they go to the feeds, with their `prevKv` from here, and leave the
   * state alone.
   */
  private readonly transient = new Map<string, KeyValue>();
  private applied = 0n;
  private readonly window: ChangeWindow;
  private readonly feeds = new Set<CacheFeed>();
  private waiters: Waiter[] = [];
  private watcher: CacheWatcher | undefined;
  /** Whether the watch can be asked for progress (see Watcher.progressRequestsUsable); found out on the first try. */
  private askProgress = true;
  private catchingUp = false;
  /** The catch-up loop's next pause. */
  private pause = FIRST_NUDGE_MS;
  /** Ends the catch-up pause early once a waiter is served. */
  private wake: (() => void) | undefined;
  private readonly timers = new Map<ReturnType<typeof setTimeout>, () => void>();
  /** Aborts the listing and checks in flight when the cache closes. */
  private readonly lifetime = new AbortController();
  private failure: { error: unknown } | undefined;
  private closed = false;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => void this.close();

  private constructor(
    private readonly client: CacheClient,
    private readonly range: KeyRange,
    private readonly options: { windowSize: number; pageSize: number; onReset: ((reset: CacheRelist) => void) | undefined },
    signal: AbortSignal | undefined,
  ) {
    this.window = new ChangeWindow(options.windowSize, 1n);
    this.signal = signal;
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** @internal What `createCache` does. */
  static async create(client: CacheClient, range: CacheRange, options: CacheOptions = {}): Promise<WatchCache> {
    if (typeof client?.kv?.iterate !== "function" || typeof client.watch !== "function") {
      throw new InvalidArgumentError("cache client", `must be a Client or a namespace of one (with kv and watch), got ${describe(client)}`);
    }
    const keys = parseRange(range, "cache");
    const windowSize = checkCount(options.windowSize ?? DEFAULT_WINDOW_SIZE, "cache windowSize", 0);
    const pageSize = checkCount(options.pageSize ?? 1000, "cache pageSize", 1);
    if (options.onReset !== undefined && typeof options.onReset !== "function") throw new InvalidArgumentError("cache onReset", `must be a function, got ${describe(options.onReset)}`);
    const signal = checkSignal(options.signal, "cache signal");
    if (signal?.aborted) throw new CallCanceledError("the cache was canceled by its AbortSignal", { cause: signal.reason });
    const cache = new WatchCache(client, keys, { windowSize, pageSize, onReset: options.onReset }, signal);
    try {
      const listed = await cache.listRange();
      cache.start(listed);
    } catch (err) {
      void cache.close();
      if (signal?.aborted) throw new CallCanceledError("the cache was canceled by its AbortSignal", { cause: signal.reason });
      throw err;
    }
    return cache;
  }

  /** The revision the cache reflects: it holds every change to its keys up to it. */
  get revision(): bigint {
    return this.applied;
  }

  /** How many keys the cache holds. */
  get size(): number {
    return this.index.size;
  }

  /**
   * One key, from the cache. Throws InvalidArgumentError ("cache get key") for a key outside the
   * cached range; rejects with CacheClosedError after close(), or with the error that ended the cache.
   */
  async get(key: Bytes, options: CacheReadOptions = {}): Promise<CacheGetResult> {
    const id = orderedKey(toBytes(key, "cache get key"));
    if (!holds(this.range, id)) throw new InvalidArgumentError("cache get key", "is outside the cached range");
    await this.before(options, "cache get");
    return { revision: this.applied, kv: this.index.get(id) };
  }

  /**
   * Keys in key order, from the cache: the whole cached range, or `{ prefix }` or `{ key, rangeEnd }`
   * within it (InvalidArgumentError "cache list range" for one that reaches outside).
   */
  async list(options: CacheListOptions = {}): Promise<CacheListResult> {
    const selected = parseRange(options, "cache list", true) ?? this.range;
    if (!contains(this.range, selected)) throw new InvalidArgumentError("cache list range", "reaches outside the cached range");
    const limit = checkCount(options.limit ?? 0, "cache list limit", 0);
    await this.before(options, "cache list");
    return { revision: this.applied, ...this.index.slice(selected, limit) };
  }

  /**
   * Resolves once the cache has applied `revision` (a put's `header.revision`, for reading your
   * own write), asking etcd for progress meanwhile so that a revision that changed none of the
   * cached keys is reached too. Rejects with CallCanceledError when `signal` fires, CacheClosedError
   * when the cache closes, or the error that ended the cache.
   */
  waitForRevision(revision: Int64, options: CacheWaitOptions = {}): Promise<void> {
    let target: bigint;
    let signal: AbortSignal | undefined;
    try {
      target = toNonNegativeInt64(revision, "cache waitForRevision revision");
      signal = checkSignal(options.signal, "cache waitForRevision signal");
      this.checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.applied >= target) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new CallCanceledError("the wait was canceled by its AbortSignal", { cause: signal.reason }));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new CallCanceledError("the wait was canceled by its AbortSignal", { cause: signal?.reason }));
      };
      const waiter: Waiter = {
        revision: target,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      void this.catchUp();
    });
  }

  /**
   * The changes to the cached keys from `fromRevision` on (by default, those after the cache's
   * current revision), one update per revision, and a `reset` update whenever the cache lists
   * anew. Throws RevisionTooOldError for a revision older than the window holds.
   *
   * @example Follow the cache from a read, without a gap:
   * ```ts
   * import { createCache } from "etcd-sdk";
   *
   * await using cache = await createCache(client, { prefix: "example/cache/" });
   * const { revision, kvs } = await cache.list();
   * const state = new Map(kvs.map((kv) => [kv.keyString, kv.valueString]));
   * await client.kv.put("example/cache/a", "1");
   * for await (const update of cache.changes({ fromRevision: revision + 1n, signal: AbortSignal.timeout(10_000) })) {
   *   if (update.type === "reset") state.clear();
   *   for (const kv of update.type === "reset" ? update.kvs : []) state.set(kv.keyString, kv.valueString);
   *   for (const e of update.type === "events" ? update.events : []) {
   *     if (e.type === "put") state.set(e.kv.keyString, e.kv.valueString);
   *     else state.delete(e.kv.keyString);
   *   }
   *   if (state.has("example/cache/a")) break;
   * }
   * ```
   */
  changes(options: CacheChangesOptions = {}): CacheFeed {
    this.checkOpen();
    const signal = checkSignal(options.signal, "cache changes signal");
    const from = options.fromRevision === undefined ? this.applied + 1n : toNonNegativeInt64(options.fromRevision, "cache changes fromRevision");
    const maxBuffered = checkCount(options.maxBuffered ?? DEFAULT_MAX_BUFFERED, "cache changes maxBuffered", 1);
    if (from < this.window.oldest) throw new RevisionTooOldError(from, this.window.oldest);
    const canceled = () => new CallCanceledError("the feed was canceled by its AbortSignal", { cause: signal?.reason });
    const onAbort = () => feed.fail(canceled());
    const feed = new CacheFeed(from, maxBuffered, (ended) => {
      this.feeds.delete(ended);
      signal?.removeEventListener("abort", onAbort);
    });
    if (signal?.aborted) {
      feed.fail(canceled());
      return feed;
    }
    this.feeds.add(feed);
    signal?.addEventListener("abort", onAbort, { once: true });
    for (const change of this.window.since(from)) feed.deliver(change);
    return feed;
  }

  /**
   * Stops the cache: its watch ends, waits reject with CacheClosedError, feeds end, and no timer
   * is left. Reads then reject with CacheClosedError.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.lifetime.abort();
    this.unfollow();
    this.settleTimers();
    this.end(new CacheClosedError());
    return Promise.resolve();
  }

  /** close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** What a read does first: checks, and for a consistent one waits until the cache has what etcd has. */
  private async before(options: CacheReadOptions, what: string): Promise<void> {
    const signal = checkSignal(options.signal, `${what} signal`);
    this.checkOpen();
    if (!options.consistent) return;
    const current = await this.currentRevision(signal);
    await this.waitForRevision(current, { signal });
    this.checkOpen();
  }

  private checkOpen(): void {
    if (this.closed) throw new CacheClosedError();
    if (this.failure) throw this.failure.error;
  }

  /** etcd's current revision, by a linearizable read of one key (counted, not sent). */
  private async currentRevision(signal: AbortSignal | undefined): Promise<bigint> {
    return (await this.client.kv.get(this.range.key, { countOnly: true, signal })).header.revision;
  }

  /** Every key of the range at one revision, listed again if that revision is compacted meanwhile. */
  private async listRange(): Promise<{ revision: bigint; index: KeyIndex }> {
    const signal = this.lifetime.signal;
    for (;;) {
      const revision = await this.currentRevision(signal);
      const index = new KeyIndex();
      try {
        for await (const kv of this.client.kv.iterate(this.range.key, { end: this.range.end, revision, pageSize: this.options.pageSize, signal })) index.append(kv);
        return { revision, index };
      } catch (err) {
        if (!(err instanceof ErrCompacted)) throw err;
      }
    }
  }

  /** Takes a listing as the state, and watches from the revision after it. */
  private start({ revision, index }: { revision: bigint; index: KeyIndex }): void {
    this.index = index;
    this.transient.clear();
    this.applied = revision;
    this.window.reset(revision + 1n);
    this.follow(revision + 1n);
    this.settleWaiters();
  }

  private follow(from: bigint): void {
    const watcher = this.client.watch(this.range.key, { end: this.range.end, startRevision: from });
    this.watcher = watcher;
    watcher.subscribe({
      next: (response) => this.receive(response),
      error: (err) => {
        if (this.watcher !== watcher || this.closed) return;
        this.watcher = undefined;
        if (err instanceof ErrCompacted) void this.relist(err instanceof WatchCompactedError ? err.compactRevision : 0n);
        else this.fail(err);
      },
      // etcd ended the watch without a reason: watch again from where it stopped.
      complete: () => {
        if (this.watcher === watcher && !this.closed) this.follow(this.applied + 1n);
      },
    });
  }

  /** Ends the watch; it is no longer the cache's before it is cancelled, so its end is not taken for etcd's. */
  private unfollow(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    watcher?.cancel();
  }

  private receive(response: WatchResponse): void {
    if (response.progress) return this.advance(response.header.revision);
    const { events } = response;
    // A response may hold several revisions: each becomes one update.
    let first = 0;
    for (let i = 1; i <= events.length; i++) {
      if (i < events.length && events[i]!.kv.modRevision === events[first]!.kv.modRevision) continue;
      this.apply(events[first]!.kv.modRevision, first === 0 && i === events.length ? events : events.slice(first, i));
      first = i;
    }
  }

  /** Applies the events of one revision and hands them to the feeds. */
  private apply(revision: bigint, events: WatchEvent[]): void {
    const transient = revision <= this.applied;
    const keys = transient ? this.transient : this.index;
    for (const event of events) {
      const id = orderedKey(event.kv.key);
      // The events are the cache's own watcher's: they take their prevKv from the cache in place.
      if (event.type === "put") event.prevKv = keys instanceof KeyIndex ? keys.put(id, event.kv) : swap(keys, id, event.kv);
      else event.prevKv = keys instanceof KeyIndex ? keys.delete(id) : swap(keys, id, undefined);
    }
    const change: CacheEvents = { type: "events", revision, events };
    this.window.push(change);
    for (const feed of this.feeds) feed.deliver(change);
    if (!transient) {
      this.transient.clear();
      this.advance(revision);
    }
  }

  private advance(revision: bigint): void {
    if (revision <= this.applied) return;
    this.applied = revision;
    this.settleWaiters();
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const applied = this.applied;
    const ready = this.waiters.filter((w) => w.revision <= applied);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > applied);
    for (const waiter of ready) waiter.resolve();
    this.wake?.();
  }

  /**
   * While someone waits for a revision the cache has not reached, has etcd tell the watch how far
   * it is (a progress request), or over the gateway checks whether the range changed meanwhile;
   * again after a pause, longer each time, until every waiter is served.
   */
  private async catchUp(): Promise<void> {
    // A new waiter: start the pauses over, and ask at once rather than after the current pause.
    this.pause = FIRST_NUDGE_MS;
    if (this.catchingUp) return this.wake?.();
    this.catchingUp = true;
    try {
      while (this.waiters.length > 0 && !this.closed && !this.failure) {
        const target = this.waiters.reduce((max, w) => (w.revision > max ? w.revision : max), 0n);
        await this.nudge(target).catch(() => undefined); // a failed check is tried again after the pause
        if (this.waiters.length === 0) break;
        await this.sleep(this.pause, true);
        this.pause = Math.min(this.pause * 2, MAX_NUDGE_MS);
      }
    } finally {
      this.catchingUp = false;
    }
  }

  private async nudge(target: bigint): Promise<void> {
    if (this.askProgress && this.watcher) {
      if (await this.watcher.progressRequestsUsable()) return this.watcher?.requestProgress();
      this.askProgress = false;
    }
    if (this.watcher) await this.check(target);
  }

  /**
   * Over the gateway: moves the cache to `target` if no cached key changed after the cache's
   * revision up to it, which holds when no key at `target` has a later modRevision and the number
   * of keys is the cache's.
   */
  private async check(target: bigint): Promise<void> {
    const { index, applied } = this;
    const size = index.size;
    const signal = this.lifetime.signal;
    const { key, end } = this.range;
    const [counted, changed] = await Promise.all([
      this.client.kv.get(key, { end, revision: target, countOnly: true, signal }),
      this.client.kv.get(key, { end, revision: target, keysOnly: true, minModRevision: applied + 1n, limit: 1, signal }),
    ]);
    if (this.index !== index || this.applied !== applied || changed.kvs.length > 0 || counted.count !== BigInt(size)) return;
    this.advance(target);
  }

  /**
   * The history the watch needs was compacted: list the range again, hand the feeds the new state
   * and watch on from there. Failures that may pass are tried again, others end the cache.
   */
  private async relist(compactRevision: bigint): Promise<void> {
    for (let pause = FIRST_RETRY_MS; !this.closed; pause = Math.min(pause * 2, MAX_RETRY_MS)) {
      let listed: { revision: bigint; index: KeyIndex };
      try {
        listed = await this.listRange();
      } catch (err) {
        if (this.closed) return;
        if (!mayPass(err)) return this.fail(err);
        await this.sleep(pause, false);
        continue;
      }
      if (this.closed) return;
      this.start(listed);
      const reset: CacheReset = { type: "reset", revision: listed.revision, kvs: listed.index.slice(this.range, 0).kvs };
      for (const feed of this.feeds) feed.deliver(reset);
      try {
        this.options.onReset?.({ revision: listed.revision, compactRevision });
      } catch (err) {
        throwLater(err);
      }
      return;
    }
  }

  /** Ends the cache with `error`: reads, waits and feeds get it. */
  private fail(error: unknown): void {
    this.failure = { error };
    this.unfollow();
    this.settleTimers();
    this.end(error);
  }

  private end(error: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    const feeds = [...this.feeds];
    this.feeds.clear();
    for (const feed of feeds) {
      if (error instanceof CacheClosedError) feed.end();
      else feed.fail(error);
    }
  }

  /** Waits `ms`, or less when the cache closes (or, if `wakeable`, when a waiter is served). */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        if (wakeable && this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = unref(setTimeout(done, ms));
      this.timers.set(timer, done);
      if (wakeable) this.wake = done;
    });
  }

  private settleTimers(): void {
    for (const done of [...this.timers.values()]) done();
  }
}

/** Sets (or with undefined removes) a key in a map; returns what it held. */
function swap(map: Map<string, KeyValue>, id: string, kv: KeyValue | undefined): KeyValue | undefined {
  const previous = map.get(id);
  if (kv) map.set(id, kv);
  else map.delete(id);
  return previous;
}

/**
 * A local, watch-fed copy of the keys under a prefix (or in a range), for reads without a round
 * trip: see WatchCache. Resolves once the first listing is in; rejects with InvalidArgumentError
 * (naming the argument) for bad input, CallCanceledError when `signal` fires first, or the error of
 * the listing.
 *
 * @example
 * ```ts
 * import { createCache } from "etcd-sdk";
 *
 * await using cache = await createCache(client, { prefix: "config/" });
 * const { kv, revision } = await cache.get("config/db"); // local: no round trip
 * console.log(kv?.valueString, "at", revision);
 * const put = await client.kv.put("config/db", "db2");
 * await cache.waitForRevision(put.header.revision); // read your own write
 * const fresh = await cache.list({ consistent: true }); // everything etcd had when asked
 * ```
 */
export function createCache(client: CacheClient, range: CacheRange, options: CacheOptions = {}): Promise<WatchCache> {
  return WatchCache.create(client, range, options);
}
