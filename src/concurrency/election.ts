import type { Bytes } from "../core/bytes.js";
import { NoLeaderError, NotLeaderError } from "../core/errors.js";
import type { KeyValue } from "../api/kv.js";
import { compare, op } from "../api/txn.js";
import type { Session } from "./session.js";
import { anySignal, cleanUp, firstCreated, stillHeld, waitDeletes } from "./wait.js";
import type { CallOptions } from "../api/kv.js";

/**
 * A leader election on a key prefix, as clientv3/concurrency's Election: candidates write a key
 * under the prefix with their session's lease; the oldest key leads, and its value is what the
 * leader proclaims. Leadership ends with resign() or with the session.
 *
 * @example
 * ```ts
 * import { Election, Session } from "etcd-sdk";
 *
 * await using session = await Session.create(client, { ttl: 10 });
 * const election = new Election(session, "example/election/scheduler");
 * await election.campaign("node-1", { signal: AbortSignal.timeout(5000) });
 * console.log("leader:", (await election.leader()).valueString); // "node-1"
 * await election.proclaim("node-1, busy");
 * await election.resign();
 * ```
 */
export class Election {
  private readonly prefix: string;
  private leaderKey: string | undefined;
  private leaderRevision = -1n;

  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    this.prefix = `${prefix}/`;
  }

  /** The key this candidate leads (or waits) with. */
  get key(): string | undefined {
    return this.leaderKey;
  }

  /**
   * Waits until this candidate leads, then returns. Rejects (and withdraws) when `signal` fires or the session ends.
   *
   * @throws {@link CallCanceledError} when `signal` fires, or the session's lease is lost, before it leads.
   * @throws {@link NotLeaderError} when the candidacy's key vanished (its lease expired) while it waited.
   * @throws {@link EndpointError} when no member can be reached; {@link EtcdServerError} when
   * etcd refuses a call ({@link ErrPermissionDenied}, ...).
   */
  async campaign(value: Bytes, options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.session.client;
    const key = `${this.prefix}${this.session.lease.toString(16)}`;
    const signal = anySignal(options.signal, this.session.signal);
    // Before the key is known to exist, there is nothing to withdraw: a campaign aborted here
    // leaves at most a key that the session's lease takes away.
    const res = await client
      .txn()
      .if(compare.createRevision(key, "=", 0))
      .then(op.put(key, value, { lease: this.session.lease }))
      .else(op.get(key))
      .commit({ signal });
    this.leaderKey = key;
    if (res.succeeded) {
      this.leaderRevision = res.header.revision;
    } else {
      const kv = res.results[0].kvs[0]!;
      this.leaderRevision = kv.createRevision;
    }
    try {
      if (!res.succeeded && !bytesEqual(res.results[0].kvs[0]!.value, value)) await this.proclaim(value, { signal });
      await waitDeletes(client, this.prefix, this.leaderRevision - 1n, signal);
      // A lease that expired before its loss was noticed took the candidacy with it: the
      // candidates behind it may already lead.
      if (!(await stillHeld(client, key, this.leaderRevision, { signal }))) throw new NotLeaderError(`lost the candidacy in ${this.prefix} while waiting: the session ended`);
    } catch (err) {
      // Within a second of the signal, whatever the members do: see cleanUp.
      await cleanUp((cleanup) => this.resign(cleanup));
      throw err;
    }
  }

  /** Publishes a new value as leader; rejects with NotLeaderError when this candidate does not lead. */
  async proclaim(value: Bytes, options: CallOptions = {}): Promise<void> {
    const key = this.requireKey();
    const res = await this.session.client
      .txn()
      .if(compare.createRevision(key, "=", this.leaderRevision))
      .then(op.put(key, value, { lease: this.session.lease }))
      .commit(options);
    if (!res.succeeded) {
      this.leaderKey = undefined;
      throw new NotLeaderError(`${key} no longer leads ${this.prefix}`);
    }
  }

  /** Gives up leadership (or the candidacy), so that the next candidate can lead. */
  async resign(options: CallOptions = {}): Promise<void> {
    if (this.leaderKey === undefined) return;
    await this.session.client.txn().if(compare.createRevision(this.leaderKey, "=", this.leaderRevision)).then(op.delete(this.leaderKey)).commit(options);
    this.leaderKey = undefined;
    this.leaderRevision = -1n;
  }

  /** The current leader's key-value; rejects with NoLeaderError when nobody leads. */
  async leader(options: { signal?: AbortSignal } = {}): Promise<KeyValue> {
    const kv = await firstCreated(this.session.client, this.prefix, options.signal);
    if (!kv) throw new NoLeaderError(`${this.prefix} has no leader`);
    return kv;
  }

  /**
   * Every change of leadership or of the leader's value, beginning with the current leader (or the
   * first one to appear), until the loop is left or `signal` fires.
   */
  async *observe(options: { signal?: AbortSignal } = {}): AsyncGenerator<KeyValue, void, undefined> {
    const client = this.session.client;
    const signal = options.signal;
    for (;;) {
      const res = await client.kv.get(this.prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1, signal });
      let leader = res.kvs[0];
      let revision = res.header.revision;
      if (!leader) {
        // Nobody leads: wait for the first candidate.
        for await (const response of client.watch(this.prefix, { prefix: true, startRevision: revision + 1n, noDelete: true, signal })) {
          leader = response.events[0]?.kv;
          if (leader) {
            revision = leader.modRevision;
            break;
          }
        }
        if (!leader) return;
      }
      yield leader;
      // Follow the leader's key: a put is a new value, a delete the end of its leadership.
      let ended = false;
      for await (const response of client.watch(leader.key, { startRevision: revision + 1n, signal })) {
        for (const event of response.events) {
          if (event.type === "delete") ended = true;
          else yield event.kv;
        }
        if (ended) break;
      }
      if (!ended) return;
    }
  }

  private requireKey(): string {
    if (this.leaderKey === undefined) throw new NotLeaderError(`this candidate does not lead ${this.prefix}`);
    return this.leaderKey;
  }
}

function bytesEqual(a: Uint8Array, b: Bytes): boolean {
  const other = typeof b === "string" ? new TextEncoder().encode(b) : b;
  return a.length === other.length && a.every((byte, i) => byte === other[i]);
}
