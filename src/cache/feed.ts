import type { KeyValue } from "../api/kv.js";
import { WatchOverflowError, type WatchEvent } from "../api/watch.js";
import { WatcherBusyError } from "../core/errors.js";
import { AsyncQueue } from "../core/queue.js";

/**
 * The changes of one revision to the cached keys, in the order etcd made them. Each event's
 * `prevKv` is the key as the cache held it before (undefined for a key it did not hold).
 */
export interface CacheEvents {
  /** Tells this update from a reset. */
  type: "events";
  /** The revision of every event in `events`. */
  revision: bigint;
  /** The changes of that revision to the cached keys, in etcd's order, with `prevKv` from the cache. */
  events: WatchEvent[];
}

/**
 * The cache listed its keys anew, at `revision`: the history it followed was compacted away
 * before it could read it (after a long disconnection, say), so what changed in between is not
 * known one change at a time. `kvs` is every cached key at `revision`, in key order: replace what
 * you built from earlier updates with it. The changes after `revision` follow.
 */
export interface CacheReset {
  /** Tells this update from a revision's events. */
  type: "reset";
  /** The revision of the new listing. */
  revision: bigint;
  /** Every cached key at that revision, in key order: the state to start again from. */
  kvs: readonly KeyValue[];
}

/** What a cache's feed yields: the changes of a revision, or a reset after a relist. */
export type CacheUpdate = CacheEvents | CacheReset;

/**
 * Receives a feed's updates as they are applied, instead of a `for await` loop; the shape of the
 * SDK's WatchObserver.
 */
export interface CacheObserver {
  /** An update, in order; throwing cancels the feed and the error goes to `error`. */
  next(update: CacheUpdate, feed: CacheFeed): void;
  /**
   * The feed failed: the cache failed (its error, e.g. ErrPermissionDenied or ClientClosedError),
   * CallCanceledError from the feed's AbortSignal, WatchOverflowError, or what `next` threw. Nothing follows.
   */
  error(error: unknown, feed: CacheFeed): void;
  /** The feed ended: cancelled, or the cache closed. Nothing follows. */
  complete?(feed: CacheFeed): void;
}

/** A callback's own error is thrown on its own, as the SDK's watch does, so that it cannot break the cache. */
export function throwLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * The changes to a cache's keys from a revision on: an async iterable (one reader), or an
 * observer's (`subscribe`). Leaving a `for await` loop or `cancel()` ends it.
 */
export class CacheFeed implements AsyncIterable<CacheUpdate>, AsyncIterator<CacheUpdate, undefined> {
  private readonly queue = new AsyncQueue<CacheUpdate>();
  private observer: CacheObserver | undefined;
  private subscribed = false;

  /** @internal */
  constructor(
    /** The first revision whose changes it delivers (resets are always delivered). */
    private readonly from: bigint,
    private readonly maxBuffered: number,
    private readonly detach: (feed: CacheFeed) => void,
  ) {}

  /** A feed is its own iterator: one reader. */
  [Symbol.asyncIterator](): AsyncIterator<CacheUpdate, undefined> {
    return this;
  }

  /** The next update, waiting for one; WatcherBusyError when an observer reads the feed. */
  next(): Promise<IteratorResult<CacheUpdate, undefined>> {
    if (this.subscribed) return Promise.reject(new WatcherBusyError("next() was called on a cache feed that an observer subscribed to"));
    return this.queue.next();
  }

  /** Leaving a `for await` loop early cancels the feed. */
  return(): Promise<IteratorResult<CacheUpdate, undefined>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * Hands each update to `observer` as the cache applies it, starting with those already queued
   * (and the end, if it came). The feed then has no other reader: `next()` rejects, and another
   * `subscribe` throws, WatcherBusyError.
   */
  subscribe(observer: CacheObserver): void {
    if (this.subscribed || this.queue.waiting) throw new WatcherBusyError("subscribe() was called on a cache feed that is already being read");
    this.subscribed = true;
    this.observer = observer;
    for (const update of this.queue.takeAll()) {
      this.deliver(update);
      if (this.observer !== observer) return;
    }
    if (this.queue.ended) this.finish();
  }

  /** Ends the feed at once; updates not yet taken are let go. */
  cancel(): void {
    this.queue.clear();
    this.end();
  }

  /** @internal An update for the reader, unless it is older than the feed's start. */
  deliver(update: CacheUpdate): void {
    if (update.type === "events" && update.revision < this.from) return;
    const observer = this.observer;
    if (!observer) {
      if (this.queue.size < this.maxBuffered) return this.queue.push(update);
      // What the reader has not taken is let go, and it is told where that began (a reset's
      // revision is older than the cache replays: the reader then lists again).
      const resumeRevision = (this.queue.peek() ?? update).revision;
      this.queue.clear();
      return this.fail(new WatchOverflowError(resumeRevision, this.maxBuffered));
    }
    try {
      observer.next(update, this);
    } catch (err) {
      this.fail(err);
    }
  }

  /** @internal Ends the feed after what was delivered. */
  end(): void {
    if (this.queue.ended) return;
    this.queue.end();
    this.closed();
  }

  /** @internal Ends the feed with `error` after what was delivered. */
  fail(error: unknown): void {
    if (this.queue.ended) return;
    this.queue.fail(error);
    this.closed();
  }

  private closed(): void {
    this.detach(this);
    this.finish();
  }

  /** Tells the observer, if any, how the feed ended: its last call. */
  private finish(): void {
    const observer = this.observer;
    if (!observer) return;
    this.observer = undefined;
    const failed = this.queue.failedWith;
    try {
      if (failed) observer.error(failed.error, this);
      else observer.complete?.(this);
    } catch (err) {
      throwLater(err);
    }
  }
}
