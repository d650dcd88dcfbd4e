import type { LeaseDefinition } from "../../gen/etcdserverpb/rpc.js";
import { type Int64, toInt64, toNonNegativeInt64 } from "../core/int64.js";
import { type CallOptions, callOptions, ResponseHeader } from "./kv.js";
import { KeepAliveHub, type LeaseKeepAlive } from "./keepalive.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";
import { checkSignal } from "../core/call-checks.js";
import type { Diagnostics } from "../core/diagnostics.js";
import { InvalidArgumentError } from "../core/errors.js";
import { describe } from "../core/bytes.js";

/** Options of {@link Lease.grant}. */
export interface LeaseGrantOptions {
  /** Ask for this lease ID instead of letting etcd choose one (must be unused and not 0). */
  id?: Int64;
}

/** What {@link Lease.grant} resolves to. */
export interface LeaseGrantResponse {
  /** Which member answered, at which revision. */
  header: ResponseHeader;
  /** The lease ID, up to 63 bits. */
  id: bigint;
  /** The TTL etcd granted, in seconds; it may raise a TTL below its minimum. */
  ttl: bigint;
}

/** What {@link Lease.timeToLive} resolves to. */
export interface LeaseTimeToLiveResponse {
  /** Which member answered, at which revision. */
  header: ResponseHeader;
  /** The lease asked about. */
  id: bigint;
  /** Seconds left; -1n when the lease expired or never existed. */
  ttl: bigint;
  /** The TTL the lease was granted with, in seconds. */
  grantedTtl: bigint;
  /** Keys attached to the lease, when asked for. */
  keys: Uint8Array[];
}

/** Options of `lease.keepAlive`. */
export interface KeepAliveOptions {
  /** Stops the keep-alive; a keepAlive() still waiting for etcd's first answer rejects with CallCanceledError. */
  signal?: AbortSignal;
  /**
   * Report the lease lost this many ms before its deadline (last confirmed renewal + TTL) rather
   * than at it, so that work fenced on the lease stops while etcd still holds it. Default 0. A
   * lease kept already keeps the margin of its first keepAlive().
   */
  lossMarginMs?: number;
}

/** Leases: `client.lease`, mirroring clientv3's Lease. */
export class Lease {
  private readonly keepAlives: KeepAliveHub;

  /** @internal */
  constructor(
    private readonly rpc: () => ServiceClient<typeof LeaseDefinition>,
    diagnostics: Diagnostics,
  ) {
    this.keepAlives = new KeepAliveHub(rpc, diagnostics);
  }

  /**
   * Keeps a lease alive until `close()`, the signal fires or the lease is lost. All leases of a
   * client share a few keep-alive streams. Watch `lost` or `signal`: they fire when etcd reports the
   * lease gone, or at the latest when its deadline (last confirmed keep-alive + TTL) passes.
   * Resolves at etcd's first answer. Rejects with ErrLeaseNotFound when the lease does not exist,
   * with EndpointError when no member can be reached within `dialTimeoutMs`. Calls for a lease
   * kept already share its handle, and closing it stops the keep-alive for all of them.
   *
   * @example
   * ```ts
   * const { id } = await client.lease.grant(10); // seconds
   * using kept = await client.lease.keepAlive(id); // renewed until the end of the scope
   * // Work that must stop when the lease is lost takes its signal.
   * await client.kv.put("example/lease/worker-1", "busy", { lease: id, signal: kept.signal });
   * console.log("confirmed until", new Date(kept.deadline));
   * ```
   *
   * @throws {@link ErrLeaseNotFound} when the lease does not exist (expired, revoked, never granted).
   * @throws {@link InvalidArgumentError} for an `id` that is not an int64, or a bad `signal` or `lossMarginMs`.
   * @throws {@link CallCanceledError} when `signal` fires before etcd's first answer.
   * @throws {@link EndpointError} when no member can be reached within `dialTimeoutMs`.
   * @throws {@link ClientClosedError} when the client is closed, or closes before etcd's first answer.
   */
  async keepAlive(id: Int64, options: KeepAliveOptions = {}): Promise<LeaseKeepAlive> {
    const signal = checkSignal(options.signal, "keepAlive signal");
    const { lossMarginMs = 0 } = options;
    if (typeof lossMarginMs !== "number" || !Number.isFinite(lossMarginMs) || lossMarginMs < 0) {
      throw new InvalidArgumentError("keepAlive lossMarginMs", `must be a finite number of milliseconds, 0 or more, got ${describe(lossMarginMs)}`);
    }
    return this.keepAlives.keepAlive(id, signal, lossMarginMs);
  }

  /** Renews a lease once; resolves with its TTL in seconds, rejects with ErrLeaseNotFound. */
  async keepAliveOnce(id: Int64, options: { signal?: AbortSignal } = {}): Promise<bigint> {
    return this.keepAlives.keepAliveOnce(id, checkSignal(options.signal, "keepAliveOnce signal"));
  }

  /** @internal Stops every keep-alive; called by client.close(). */
  close(): void {
    this.keepAlives.close();
  }

  /** Creates a lease that expires `ttlSeconds` after its last keep-alive. */
  async grant(ttlSeconds: Int64, options: LeaseGrantOptions & CallOptions = {}): Promise<LeaseGrantResponse> {
    const request = { TTL: toNonNegativeInt64(ttlSeconds, "lease grant ttl"), ID: options.id === undefined ? undefined : toInt64(options.id, "lease grant id") };
    const response = await this.rpc().leaseGrant(request, callOptions(options));
    return { header: new ResponseHeader(response.header), id: response.ID, ttl: response.TTL };
  }

  /** Ends a lease now, deleting the keys attached to it. */
  async revoke(id: Int64, options: CallOptions = {}): Promise<{
    /** Which member answered, and the store's revision after the keys were deleted. */
    header: ResponseHeader;
  }> {
    const response = await this.rpc().leaseRevoke({ ID: toInt64(id, "lease revoke id") }, callOptions(options));
    return { header: new ResponseHeader(response.header) };
  }

  /** What etcd knows of a lease: time left, granted TTL and, with `keys`, its keys. */
  async timeToLive(id: Int64, options: { keys?: boolean } & CallOptions = {}): Promise<LeaseTimeToLiveResponse> {
    const request = { ID: toInt64(id, "lease timeToLive id"), keys: options.keys ?? false };
    const response = await this.rpc().leaseTimeToLive(request, callOptions(options));
    return {
      header: new ResponseHeader(response.header),
      id: response.ID,
      ttl: response.TTL,
      grantedTtl: response.grantedTTL,
      keys: response.keys,
    };
  }

  /** The IDs of every live lease. */
  async leases(options: CallOptions = {}): Promise<{
    /** Which member answered, at which revision. */
    header: ResponseHeader;
    /** The live leases' IDs. */
    ids: bigint[];
  }> {
    const response = await this.rpc().leaseLeases({}, callOptions(options));
    return { header: new ResponseHeader(response.header), ids: response.leases.map((l) => l.ID) };
  }
}
