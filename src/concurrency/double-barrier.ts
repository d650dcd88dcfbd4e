import { EtcdError, InvalidArgumentError } from "../core/errors.js";
import { describe } from "../core/bytes.js";
import { op } from "../api/txn.js";
import type { CallOptions, GetResponse } from "../api/kv.js";
import type { Session } from "./session.js";
import { anySignal, checkName, cleanUp, createUnique, waitEvent } from "./wait.js";

/** enter() found the double barrier full: `count` participants had entered before this one. */
export class BarrierFullError extends EtcdError {
  override name = "BarrierFullError";
}

/**
 * A double barrier, as clientv3's recipe: `enter()` blocks until `count` participants have
 * entered, `leave()` until all of them have left. Each participant writes a key with its session's
 * lease under `<key>/waiters/`, so one whose session ends counts as having left. The last to enter
 * writes `<key>/ready`, which releases the others.
 */
export class DoubleBarrier {
  private readonly waiters: string;
  private readonly ready: string;
  private myKey: string | undefined;

  /**
   * Throws InvalidArgumentError ("double barrier key") when `key` is not a non-empty string, and
   * ("count") when `count` is not an integer of at least 1.
   */
  constructor(
    private readonly session: Session,
    key: string,
    /** How many participants must enter before any is let in. */
    readonly count: number,
  ) {
    checkName(key, "double barrier key");
    if (!Number.isSafeInteger(count) || count < 1) throw new InvalidArgumentError("count", `must be an integer of at least 1, got ${describe(count)}`);
    this.waiters = `${key}/waiters/`;
    this.ready = `${key}/ready`;
  }

  /**
   * Enters the barrier and waits until `count` participants have. Rejects with BarrierFullError
   * when `count` had entered already, and with CallCanceledError when `signal` fires or the
   * session ends; either way this participant is withdrawn (its key deleted), so it is not counted.
   */
  async enter(options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.session.client;
    const signal = anySignal(options.signal, this.session.signal);
    if ((await this.entered(signal)).kvs.length >= this.count) throw new BarrierFullError(`${this.count} participants have entered ${this.waiters} already`);
    const mine = await createUnique(client, this.waiters, "", { lease: this.session.lease, signal });
    this.myKey = mine.key;
    try {
      // Others may have entered between the check above and our create: creation order decides who is in.
      const last = (await this.entered(signal)).kvs[this.count - 1];
      if (last && mine.revision > last.createRevision) throw new BarrierFullError(`${this.count} participants entered ${this.waiters} before this one`);
      if (last && mine.revision === last.createRevision) {
        await client.kv.put(this.ready, "", { signal });
        return;
      }
      while (!(await waitEvent(client, this.ready, "put", mine.revision, { signal })));
    } catch (err) {
      // Within a second of the signal, whatever the members do: see cleanUp.
      await cleanUp((cleanup) => this.withdraw(cleanup));
      throw err;
    }
  }

  /**
   * Leaves the barrier and waits until every participant has. Rejects with CallCanceledError when
   * `signal` fires or the session ends; the participant that entered first leaves last, so if it
   * gives up it has not left, and the others wait for it (or for its session to end).
   */
  async leave(options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.session.client;
    const signal = anySignal(options.signal, this.session.signal);
    for (;;) {
      const res = await this.entered(signal);
      const first = res.kvs[0];
      const last = res.kvs[res.kvs.length - 1];
      if (!first || !last) {
        this.myKey = undefined;
        return;
      }
      const isFirst = first.keyString === this.myKey;
      if (isFirst && res.kvs.length === 1) {
        // The ready key goes with the last participant, so that the barrier can be entered afresh.
        await client.txn().then(op.delete(this.ready), op.delete(first.key)).commit({ signal });
        this.myKey = undefined;
        return;
      }
      // The first waits for the others to go, they for the first: each watches one key, not the crowd.
      if (!isFirst) await this.withdraw();
      await waitEvent(client, isFirst ? last.key : first.key, "delete", res.header.revision, { signal });
    }
  }

  /** The participants' keys, first entered first. */
  private entered(signal: AbortSignal): Promise<GetResponse> {
    return this.session.client.kv.get(this.waiters, { prefix: true, keysOnly: true, sort: { target: "create", order: "ascend" }, signal });
  }

  private async withdraw(options: CallOptions = {}): Promise<void> {
    if (this.myKey === undefined) return;
    await this.session.client.kv.delete(this.myKey, options);
    this.myKey = undefined;
  }
}
