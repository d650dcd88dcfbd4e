import { EtcdError } from "../core/errors.js";
import { compare, op } from "../api/txn.js";
import type { Session } from "./session.js";
import { stillHeld, waitDeletes } from "./wait.js";

/** tryLock found the mutex held by someone else. */
export class LockedError extends EtcdError {
  override name = "LockedError";
}

/** unlock or a check found that this session does not hold the mutex. */
export class NotLockedError extends EtcdError {
  override name = "NotLockedError";
}

/**
 * A distributed lock on a key prefix, as clientv3/concurrency's Mutex: each contender writes a key
 * under the prefix with its session's lease, and the oldest key (by creation revision) holds the
 * lock, so waiters are served in order of arrival. The lock ends with the session.
 */
export class Mutex {
  private readonly prefix: string;
  private myKey: string | undefined;
  private myRevision = -1n;

  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    this.prefix = `${prefix}/`;
  }

  /** The key this contender holds or waits with, once it has one. */
  get key(): string | undefined {
    return this.myKey;
  }

  /** The revision at which this contender's key was created. */
  get revision(): bigint {
    return this.myRevision;
  }

  /** Waits until the lock is held. Rejects (and leaves the queue) when `signal` fires. */
  async lock(options: { signal?: AbortSignal } = {}): Promise<void> {
    const owner = await this.tryAcquire();
    if (owner) return;
    try {
      await waitDeletes(this.session.client, this.prefix, this.myRevision - 1n, anySignal(options.signal, this.session.signal));
      if (!(await this.isOwner())) throw new NotLockedError(`lost the lock on ${this.prefix} while waiting: the session ended`);
    } catch (err) {
      await this.unlock().catch(() => undefined);
      throw err;
    }
  }

  /** Takes the lock if it is free; rejects with LockedError otherwise. */
  async tryLock(): Promise<void> {
    if (await this.tryAcquire()) return;
    await this.unlock();
    throw new LockedError(`${this.prefix} is locked by another session`);
  }

  /** Releases the lock (or leaves the queue). */
  async unlock(): Promise<void> {
    if (this.myKey === undefined) return;
    await this.session.client.kv.delete(this.myKey);
    this.myKey = undefined;
    this.myRevision = -1n;
  }

  /** Whether this session holds the lock now, as a condition for a transaction. */
  isOwnerCompare(): ReturnType<typeof compare.createRevision> {
    if (this.myKey === undefined) throw new NotLockedError(`${this.prefix} is not held by this session`);
    return compare.createRevision(this.myKey, "=", this.myRevision);
  }

  /** Writes this session's key if it has none yet; true when it is the oldest, i.e. holds the lock. */
  private async tryAcquire(): Promise<boolean> {
    const client = this.session.client;
    const key = `${this.prefix}${this.session.lease.toString(16)}`;
    const res = await client
      .txn()
      .if(compare.createRevision(key, "=", 0))
      .then(op.put(key, "", { lease: this.session.lease }), op.get(this.prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1 }))
      .else(op.get(key), op.get(this.prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1 }))
      .commit();
    this.myKey = key;
    this.myRevision = res.succeeded ? res.header.revision : res.results[0].kvs[0]!.createRevision;
    const oldest = res.results[1].kvs[0];
    return oldest === undefined || oldest.createRevision === this.myRevision;
  }

  private async isOwner(): Promise<boolean> {
    return this.myKey !== undefined && stillHeld(this.session.client, this.myKey, this.myRevision);
  }
}

/** A signal that fires when either does. */
export function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
