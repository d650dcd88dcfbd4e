import type { EtcdApi } from "../api/keyspace.js";
import type { Int64 } from "../core/int64.js";
import type { LeaseKeepAlive } from "../api/keepalive.js";

export interface SessionOptions {
  /** TTL of the session's lease in seconds. Default 60, as in clientv3. */
  ttl?: number;
  /** Use this existing lease instead of granting one. */
  leaseId?: Int64;
  signal?: AbortSignal;
}

/**
 * A lease kept alive for as long as the session lives, as clientv3/concurrency's Session: keys
 * written with it (locks, election candidacies) vanish when the session ends or is lost.
 */
export class Session implements AsyncDisposable {
  private constructor(
    readonly client: EtcdApi,
    /** The session's lease. */
    readonly lease: bigint,
    private readonly keepAlive: LeaseKeepAlive,
  ) {}

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
  async close(): Promise<void> {
    this.orphan();
    await this.client.lease.revoke(this.lease).catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
