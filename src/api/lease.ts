import type { LeaseDefinition } from "../../gen/etcdserverpb/rpc.js";
import { type Int64, toInt64, toNonNegativeInt64 } from "../core/int64.js";
import { type CallOptions, callOptions, ResponseHeader } from "./kv.js";
import { KeepAliveHub, type LeaseKeepAlive } from "./keepalive.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";
import { checkSignal } from "../core/call-checks.js";
import type { Diagnostics } from "../core/diagnostics.js";

export interface LeaseGrantOptions {
  /** Ask for this lease ID instead of letting etcd choose one (must be unused and not 0). */
  id?: Int64;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  /** The lease ID, up to 63 bits. */
  id: bigint;
  /** The TTL etcd granted, in seconds; it may raise a TTL below its minimum. */
  ttl: bigint;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: bigint;
  /** Seconds left; -1n when the lease expired or never existed. */
  ttl: bigint;
  /** The TTL the lease was granted with, in seconds. */
  grantedTtl: bigint;
  /** Keys attached to the lease, when asked for. */
  keys: Uint8Array[];
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
   * with EndpointError when no member can be reached within `dialTimeoutMs`.
   */
  async keepAlive(id: Int64, options: { signal?: AbortSignal } = {}): Promise<LeaseKeepAlive> {
    return this.keepAlives.keepAlive(id, checkSignal(options.signal, "keepAlive signal"));
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
  async revoke(id: Int64, options: CallOptions = {}): Promise<{ header: ResponseHeader }> {
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
  async leases(options: CallOptions = {}): Promise<{ header: ResponseHeader; ids: bigint[] }> {
    const response = await this.rpc().leaseLeases({}, callOptions(options));
    return { header: new ResponseHeader(response.header), ids: response.leases.map((l) => l.ID) };
  }
}
