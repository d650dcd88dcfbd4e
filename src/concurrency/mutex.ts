import { EtcdError } from "../core/errors.js";
import { compare, op } from "../api/txn.js";
import type { Session } from "./session.js";
import { anySignal, cleanUp, stillHeld, waitDeletes } from "./wait.js";
import type { CallOptions } from "../api/kv.js";

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
 *
 * @example
 * ```ts
 * import { Mutex, Session } from "etcd-sdk";
 *
 * await using session = await Session.create(client, { ttl: 10 });
 * const mutex = new Mutex(session, "example/mutex/report");
 * await mutex.lock({ signal: AbortSignal.timeout(5000) });
 * try {
 *   console.log("holding the lock with", mutex.key);
 * } finally {
 *   await mutex.unlock();
 * }
 * ```
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

  /**
   * Waits until the lock is held. Rejects (and leaves the queue) when `signal` fires.
   *
   * @throws {@link CallCanceledError} when `signal` fires, or the session's lease is lost, before the lock is held.
   * @throws {@link NotLockedError} when the session's key vanished while it waited.
   * @throws {@link EndpointError} when no member can be reached; {@link EtcdServerError} when
   * etcd refuses a call ({@link ErrPermissionDenied}, ...).
   */
  async lock(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = anySignal(options.signal, this.session.signal);
    try {
      if (await this.tryAcquire({ signal })) return;
      await waitDeletes(this.session.client, this.prefix, this.myRevision - 1n, signal);
      if (!(await this.isOwner({ signal }))) throw new NotLockedError(`lost the lock on ${this.prefix} while waiting: the session ended`);
    } catch (err) {
      // Within a second of the signal, whatever the members do: see cleanUp.
      await cleanUp((cleanup) => this.unlock(cleanup));
      throw err;
    }
  }

  /** Takes the lock if it is free; rejects with LockedError otherwise. */
  async tryLock(options: CallOptions = {}): Promise<void> {
    if (await this.tryAcquire(options)) return;
    await this.unlock(options);
    throw new LockedError(`${this.prefix} is locked by another session`);
  }

  /** Releases the lock (or leaves the queue). */
  async unlock(options: CallOptions = {}): Promise<void> {
    if (this.myKey === undefined) return;
    await this.session.client.kv.delete(this.myKey, options);
    this.myKey = undefined;
    this.myRevision = -1n;
  }

  /** Whether this session holds the lock now, as a condition for a transaction. */
  isOwnerCompare(): ReturnType<typeof compare.createRevision> {
    if (this.myKey === undefined) throw new NotLockedError(`${this.prefix} is not held by this session`);
    return compare.createRevision(this.myKey, "=", this.myRevision);
  }

  /** Writes this session's key if it has none yet; true when it is the oldest, i.e. holds the lock. */
  private async tryAcquire(options: CallOptions): Promise<boolean> {
    const client = this.session.client;
    const key = `${this.prefix}${this.session.lease.toString(16)}`;
    const res = await client
      .txn()
      .if(compare.createRevision(key, "=", 0))
      .then(op.put(key, "", { lease: this.session.lease }), op.get(this.prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1 }))
      .else(op.get(key), op.get(this.prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1 }))
      .commit(options);
    this.myKey = key;
    this.myRevision = res.succeeded ? res.header.revision : res.results[0].kvs[0]!.createRevision;
    const oldest = res.results[1].kvs[0];
    return oldest === undefined || oldest.createRevision === this.myRevision;
  }

  private async isOwner(options: CallOptions): Promise<boolean> {
    return this.myKey !== undefined && stillHeld(this.session.client, this.myKey, this.myRevision, options);
  }
}
