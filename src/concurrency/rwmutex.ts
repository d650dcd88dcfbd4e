import { LockedError, NotLockedError } from "./mutex.js";
import type { CallOptions } from "../api/kv.js";
import type { Session } from "./session.js";
import { anySignal, checkName, cleanUp, createUnique, stillHeld, waitDeletes } from "./wait.js";

type Mode = "read" | "write";

/**
 * A distributed readers-writer lock on a key prefix, as clientv3's recipe: readers share it, a
 * writer excludes everyone. Each contender writes a key with its session's lease under
 * `<prefix>/read/` or `<prefix>/write/`, and the order of creation is the order of service: a
 * reader waits for the writers that came before it, a writer for everyone that came before it,
 * so a stream of readers cannot starve a writer. One instance is one contender; the lock ends
 * with the session.
 */
export class RWMutex {
  private readonly prefix: string;
  private held: { key: string; mode: Mode } | undefined;

  /** Throws InvalidArgumentError ("rwmutex prefix") when `prefix` is not a non-empty string. */
  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    this.prefix = `${checkName(prefix, "rwmutex prefix")}/`;
  }

  /**
   * Waits until the lock is held for reading: no writer that came earlier holds or waits for it.
   * Rejects with LockedError when this instance holds or waits already, with CallCanceledError
   * when `signal` fires or the session ends, and with NotLockedError when the session's key was
   * lost while waiting; on rejection this contender leaves the queue.
   */
  rLock(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.acquire("read", `${this.prefix}write/`, options.signal);
  }

  /**
   * Waits until the lock is held for writing: no reader or writer that came earlier holds or waits
   * for it. Rejects as rLock does.
   */
  lock(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.acquire("write", this.prefix, options.signal);
  }

  /** Releases a read lock (or leaves the queue); rejects with NotLockedError when this instance holds the write lock. */
  rUnlock(options: CallOptions = {}): Promise<void> {
    return this.release("read", options);
  }

  /** Releases the write lock (or leaves the queue); rejects with NotLockedError when this instance holds a read lock. */
  unlock(options: CallOptions = {}): Promise<void> {
    return this.release("write", options);
  }

  /** Queues with a key of `mode`, then waits until every key under `blockers` created before it is gone. */
  private async acquire(mode: Mode, blockers: string, callerSignal: AbortSignal | undefined): Promise<void> {
    if (this.held) throw new LockedError(`this RWMutex on ${this.prefix} holds or waits for the ${this.held.mode} lock already; use one instance per contender`);
    const client = this.session.client;
    const signal = anySignal(callerSignal, this.session.signal);
    const mine = await createUnique(client, `${this.prefix}${mode}/`, "", { lease: this.session.lease, signal });
    this.held = { key: mine.key, mode };
    try {
      await waitDeletes(client, blockers, mine.revision - 1n, signal);
      // A lease that expired before its loss was noticed took our key, and our place, with it.
      if (!(await stillHeld(client, mine.key, mine.revision, { signal }))) throw new NotLockedError(`lost the ${mode} lock on ${this.prefix} while waiting: the session ended`);
    } catch (err) {
      // Within a second of the signal, whatever the members do: see cleanUp.
      await cleanUp((cleanup) => this.release(mode, cleanup));
      throw err;
    }
  }

  private async release(mode: Mode, options: CallOptions): Promise<void> {
    const held = this.held;
    if (held === undefined) return;
    if (held.mode !== mode) throw new NotLockedError(`this RWMutex on ${this.prefix} holds the ${held.mode} lock, not the ${mode} lock`);
    await this.session.client.kv.delete(held.key, options);
    this.held = undefined;
  }
}
