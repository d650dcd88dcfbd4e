import type { EtcdApi } from "../api/keyspace.js";
import type { Int64 } from "../core/int64.js";
import type { LeaseKeepAlive } from "../api/keepalive.js";
import type { CallOptions } from "../api/kv.js";

/** Options of {@link Session.create}. */
export interface SessionOptions {
  /** TTL of the session's lease in seconds. Default 60, as in clientv3. */
  ttl?: number;
  /** Use this existing lease instead of granting one. */
  leaseId?: Int64;
  /**
   * Cancels creating the session (CallCanceledError). Once the session exists, firing it stops the
   * keep-alive, as `orphan()` does, and the session's own `signal` fires.
   */
  signal?: AbortSignal;
}

/**
 * A lease kept alive for as long as the session lives, as clientv3/concurrency's Session: keys
 * written with it (locks, election candidacies) vanish when the session ends or is lost.
 *
 * @example
 * ```ts
 * import { Session } from "etcd-sdk";
 *
 * await using session = await Session.create(client, { ttl: 10 });
 * // The key lives as long as the session: closing it (here, at the end of the scope) revokes the
 * // lease, which deletes the key. Work that must stop if the session is lost takes its signal.
 * await client.kv.put("example/session/worker-1", "alive", { lease: session.lease, signal: session.signal });
 * ```
 */
export class Session implements AsyncDisposable {
  private constructor(
    /** The client (or namespace) the session's lease lives in; the recipes built on the session use it. */
    readonly client: EtcdApi,
    /** The session's lease. */
    readonly lease: bigint,
    private readonly keepAlive: LeaseKeepAlive,
  ) {}

  /**
   * Grants a lease of `ttl` seconds (or takes `leaseId`) and keeps it alive; resolves once etcd
   * has confirmed the first keep-alive.
   *
   * @throws {@link InvalidArgumentError} for a `ttl` or `leaseId` that is not an integer.
   * @throws {@link ErrLeaseNotFound} when `leaseId` names no live lease.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no member can be reached within `dialTimeoutMs`.
   */
  static async create(client: EtcdApi, options: SessionOptions = {}): Promise<Session> {
    const signal = options.signal;
    const lease = options.leaseId ?? (await client.lease.grant(options.ttl ?? 60, { signal })).id;
    const keepAlive = await client.lease.keepAlive(lease, { signal });
    return new Session(client, keepAlive.id, keepAlive);
  }

  /** Aborted when the session's lease is lost; its reason is the LeaseLostError. */
  get signal(): AbortSignal {
    return this.keepAlive.signal;
  }

  /** Resolves when the session's lease is lost or the session closed. */
  get done(): Promise<unknown> {
    return this.keepAlive.lost;
  }

  /** Stops keeping the lease alive without revoking it: its keys live on until the TTL runs out. */
  orphan(): void {
    this.keepAlive.close();
  }

  /** Ends the session: stops the keep-alive and revokes the lease, deleting its keys. */
  async close(options: CallOptions = {}): Promise<void> {
    this.orphan();
    await this.client.lease.revoke(this.lease, options).catch(() => undefined);
  }

  /** What `await using` calls when the session goes out of scope: {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
