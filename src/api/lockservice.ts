import type { ElectionDefinition, LeaderKey as LeaderKeyPb } from "../../gen/v3electionpb/v3election.js";
import type { LockDefinition } from "../../gen/v3lockpb/v3lock.js";
import { type Bytes, toBytes } from "../core/bytes.js";
import { EtcdServerError, NoLeaderError, NotLeaderError } from "../core/errors.js";
import { type Int64, toInt64 } from "../core/int64.js";
import { type CallOptions, callOptions, KeyValue, ResponseHeader } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

/**
 * etcd's server-side lock service (v3lockpb): the server runs the lock recipe for the client.
 * The lock is held while the returned key exists, at most as long as the lease.
 */
export class LockService {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof LockDefinition>) {}

  /** Waits until the named lock is free and takes it; resolves with the key that holds it. */
  async lock(name: Bytes, lease: Int64, options: CallOptions = {}): Promise<{
    /** Which member answered, at which revision. */
    header: ResponseHeader;
    /** The key that holds the lock while it exists: pass it to `unlock`. */
    key: Uint8Array;
  }> {
    const response = await this.rpc().lock({ name: toBytes(name, "lock name"), lease: toInt64(lease, "lock lease") }, callOptions(options));
    return { header: new ResponseHeader(response.header), key: response.key };
  }

  /** Releases a lock by the key `lock` returned. */
  async unlock(key: Uint8Array, options: CallOptions = {}): Promise<{
    /** Which member answered, and the store's revision after the key was deleted. */
    header: ResponseHeader;
  }> {
    const response = await this.rpc().unlock({ key: toBytes(key, "unlock key") }, callOptions(options));
    return { header: new ResponseHeader(response.header) };
  }
}

/** A leadership won through the election service. */
export interface LeaderKey {
  /** The election's name. */
  name: Uint8Array;
  /** The key that holds the leadership while it exists. */
  key: Uint8Array;
  /** The revision that created `key`. */
  revision: bigint;
  /** The lease `key` is attached to: the leadership ends with it. */
  lease: bigint;
}

function leaderKeyPb(leader: LeaderKey): Partial<LeaderKeyPb> {
  return { name: leader.name, key: leader.key, rev: toInt64(leader.revision, "leader revision"), lease: toInt64(leader.lease, "leader lease") };
}

/** The election service's own failures, as the concurrency recipe's errors. */
async function electionCall<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof EtcdServerError && err.serverMessage === "election: no leader") throw new NoLeaderError("the election has no leader", { cause: err });
    if (err instanceof EtcdServerError && err.serverMessage === "election: not leader") throw new NotLeaderError("this candidate does not lead the election", { cause: err });
    throw err;
  }
}

/** etcd's server-side election service (v3electionpb): the server runs the election recipe. */
export class ElectionService {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof ElectionDefinition>) {}

  /** Waits until this candidate leads the named election; resolves with its leadership. */
  async campaign(name: Bytes, lease: Int64, value: Bytes, options: CallOptions = {}): Promise<LeaderKey> {
    const request = { name: toBytes(name, "campaign name"), lease: toInt64(lease, "campaign lease"), value: toBytes(value, "campaign value") };
    const { leader } = await this.rpc().campaign(request, callOptions(options));
    return { name: leader!.name, key: leader!.key, revision: leader!.rev, lease: leader!.lease };
  }

  /** Publishes a new value as the current leader; rejects with NotLeaderError when it no longer leads. */
  async proclaim(leader: LeaderKey, value: Bytes, options: CallOptions = {}): Promise<void> {
    await electionCall(this.rpc().proclaim({ leader: leaderKeyPb(leader), value: toBytes(value, "proclaim value") }, callOptions(options)));
  }

  /** The current leader's key-value, or undefined when the election has none. */
  async leader(name: Bytes, options: CallOptions = {}): Promise<KeyValue | undefined> {
    try {
      const response = await electionCall(this.rpc().leader({ name: toBytes(name, "election name") }, callOptions(options)));
      return response.kv ? new KeyValue(response.kv) : undefined;
    } catch (err) {
      if (err instanceof NoLeaderError) return undefined;
      throw err;
    }
  }

  /** Every leader and value of the election as they change, until the loop is left or `signal` fires. */
  async *observe(name: Bytes, options: CallOptions = {}): AsyncGenerator<KeyValue, void, undefined> {
    for await (const response of this.rpc().observe({ name: toBytes(name, "election name") }, callOptions(options))) {
      if (response.kv) yield new KeyValue(response.kv);
    }
  }

  /** Gives up a leadership. */
  async resign(leader: LeaderKey, options: CallOptions = {}): Promise<void> {
    await electionCall(this.rpc().resign({ leader: leaderKeyPb(leader) }, callOptions(options)));
  }
}
