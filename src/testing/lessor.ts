import { ErrLeaseExist, ErrLeaseNotFound, ErrLeaseTTLTooLarge } from "../core/errors.js";
import type { Clock } from "./clock.js";
import { orderedKey } from "../core/bytes.js";
import type { Mvcc } from "./mvcc.js";
import { refusal } from "./refusal.js";

/** The longest TTL etcd grants, in seconds. */
const MAX_LEASE_TTL = 9_000_000_000n;
/**
 * The shortest TTL etcd grants, in seconds; it raises shorter ones to it. It is 1.5 election
 * timeouts rounded up: 2 s with etcd's default 1 s election timeout.
 */
const MIN_LEASE_TTL = 2n;

interface Lease {
  readonly id: bigint;
  /** The TTL granted, in seconds. */
  readonly ttl: bigint;
  /** When it runs out, on the clock. */
  expiry: number;
}

/**
 * etcd's lessor: leases with a TTL on the clock, renewed by keep-alives, and revoked (their keys
 * deleted in one write) when revoked or when they run out. A lease is revoked at the instant it
 * runs out; etcd checks every 500 ms, so there it can live a little longer.
 */
export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  /** No lease runs out before this instant (a renewal only moves an expiry later). */
  private nextExpiry = Infinity;
  private cancelTimer: (() => void) | undefined;
  /** Where the IDs etcd chooses start: the member's ID in the top 16 bits, as etcd's generator does. */
  private nextId: bigint;

  constructor(
    private readonly store: Mvcc,
    private readonly clock: Clock,
    memberId: bigint,
  ) {
    this.nextId = ((memberId & 0xffffn) << 48n) + 1n;
  }

  /** Grants a lease of `ttl` seconds, with the ID asked for or (0n) one of the lessor's choosing. */
  grant(id: bigint, ttl: bigint): Lease {
    if (id === 0n) id = this.chooseId();
    if (ttl > MAX_LEASE_TTL) throw refusal(ErrLeaseTTLTooLarge);
    if (this.leases.has(id)) throw refusal(ErrLeaseExist);
    const lease: Lease = { id, ttl: ttl < MIN_LEASE_TTL ? MIN_LEASE_TTL : ttl, expiry: 0 };
    this.refresh(lease);
    this.leases.set(id, lease);
    if (lease.expiry < this.nextExpiry) this.schedule(lease.expiry);
    return lease;
  }

  /** Ends a lease and deletes its keys, in key order, in one write. */
  revoke(id: bigint): void {
    const lease = this.leases.get(id);
    if (!lease) throw refusal(ErrLeaseNotFound);
    this.store.write(() => {
      for (const key of this.store.keysOf(id)) this.store.deleteRange({ start: orderedKey(key), end: undefined });
    });
    this.leases.delete(id);
  }

  /** Renews a lease for its TTL again; the TTL, or undefined for a lease that is gone (or never was). */
  renew(id: bigint): bigint | undefined {
    const lease = this.lookup(id);
    if (!lease) return undefined;
    this.refresh(lease);
    return lease.ttl;
  }

  /** A lease still alive. */
  lookup(id: bigint): Lease | undefined {
    this.expireDue();
    return this.leases.get(id);
  }

  /** Whole seconds the lease has left, as etcd rounds them (down). */
  secondsLeft(lease: Lease): bigint {
    return BigInt(Math.trunc((lease.expiry - this.clock.now()) / 1000));
  }

  /** The IDs of every lease alive, the first to run out first. */
  ids(): bigint[] {
    this.expireDue();
    return [...this.leases.values()].sort((a, b) => a.expiry - b.expiry).map((lease) => lease.id);
  }

  /** Revokes the leases that ran out, the earliest first, each in a write of its own. */
  expireDue(): void {
    const now = this.clock.now();
    if (now < this.nextExpiry) return;
    const expired = [...this.leases.values()].filter((lease) => lease.expiry <= now).sort((a, b) => a.expiry - b.expiry);
    for (const lease of expired) this.revoke(lease.id);
    let next = Infinity;
    for (const lease of this.leases.values()) next = Math.min(next, lease.expiry);
    this.schedule(next);
  }

  /** Stops the expiry timer. */
  close(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private refresh(lease: Lease): void {
    lease.expiry = this.clock.now() + Number(lease.ttl) * 1000;
  }

  /** Sets the one timer for `expiry`, the earliest a lease can run out. */
  private schedule(expiry: number): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.nextExpiry = expiry;
    if (expiry !== Infinity) this.cancelTimer = this.clock.setTimer(() => this.expireDue(), expiry - this.clock.now());
  }

  private chooseId(): bigint {
    while (this.leases.has(this.nextId)) this.nextId++;
    return this.nextId++;
  }
}
