import type { LeaseDefinition, LeaseKeepAliveRequest, LeaseKeepAliveResponse } from "../../gen/etcdserverpb/rpc.js";
import { CallCanceledError, ClientClosedError, EndpointError, ErrLeaseNotFound, LeaseLostError } from "../core/errors.js";
import { asEtcdReturns } from "../core/server-error-lookup.js";
import { type Int64, toInt64 } from "../core/int64.js";
import { AsyncQueue } from "../core/queue.js";
import { ResilientStream, worthReconnecting } from "../pipeline/resilient-stream.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";
import { restart, unref } from "../core/timers.js";
import type { Diagnostics } from "../core/diagnostics.js";
import { Metadata } from "nice-grpc-common";

/** A lease the client keeps alive; see `client.lease.keepAlive`. */
export interface LeaseKeepAlive extends Disposable {
  /** The lease kept alive. */
  readonly id: bigint;
  /** Aborted when the lease is lost, with a LeaseLostError as its reason: pass it to work that must stop then. */
  readonly signal: AbortSignal;
  /** Resolves with the LeaseLostError once the lease is lost (never rejects). */
  readonly lost: Promise<LeaseLostError>;
  /** Until when (epoch ms) etcd has confirmed the lease: the last confirmed keep-alive plus its TTL. */
  readonly deadline: number;
  /** Stops sending keep-alives; the lease then expires on its own unless revoked. */
  close(): void;
}

interface Entry {
  id: bigint;
  /** The stream that renews the lease. */
  shard: Shard;
  handle: Handle;
  /** When each keep-alive still unanswered on the current stream was sent, oldest first. */
  sent: number[];
  /** The lease's TTL in ms, once known. */
  ttlMs: number;
  /** How long before its deadline the lease is reported lost. */
  lossMarginMs: number;
  /** Settles the keepAlive() call, at the first answer; undefined after it. */
  starting: { resolve(handle: LeaseKeepAlive): void; reject(err: unknown): void } | undefined;
  /** What keepAlive() calls for the lease get. */
  started: Promise<LeaseKeepAlive>;
  sendTimer: ReturnType<typeof setTimeout> | undefined;
  lostTimer: ReturnType<typeof setTimeout> | undefined;
  /** Removes the AbortSignal listener the caller gave. */
  detach: () => void;
}

class Handle implements LeaseKeepAlive {
  readonly lost: Promise<LeaseLostError>;
  deadline: number;
  private readonly controller = new AbortController();
  private resolveLost!: (error: LeaseLostError) => void;

  constructor(
    readonly id: bigint,
    deadline: number,
    private readonly stop: () => void,
  ) {
    this.deadline = deadline;
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  markLost(reason: LeaseLostError["reason"]): void {
    if (this.controller.signal.aborted) return;
    const error = new LeaseLostError(this.id, reason);
    this.controller.abort(error);
    this.resolveLost(error);
  }

  close(): void {
    this.stop();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * LeaseKeepAlive streams per client at most. etcd answers the renewals of one stream one after
 * another, each waiting for its applied index to catch up, so under write load one stream falls
 * behind thousands of leases (10k leases of TTL 6 s granted at full speed on 2 cores: all lost
 * with 1 stream, 4 of 10 with 4, none with 16); streams are served in parallel.
 */
const STREAMS = 16;

/**
 * The longest wait before a broken keep-alive stream is opened again, in ms (clientv3 waits as
 * long). While a cluster elects a leader its members refuse new streams at once; the renewals must
 * land soon after a leader is in, when a lease of a few seconds has little of its TTL left.
 */
const MAX_RECONNECT_WAIT_MS = 500;

interface Shard {
  entries: Set<Entry>;
  stream: ResilientStream<Partial<LeaseKeepAliveRequest>, LeaseKeepAliveResponse>;
}

const canceled = (signal: AbortSignal) => new CallCanceledError("keepAlive was canceled by its AbortSignal", { cause: signal.reason });

const leaseNotFound = () => asEtcdReturns(ErrLeaseNotFound);

/**
 * Keeps leases alive over a few LeaseKeepAlive streams per client (see STREAMS). Each lease is
 * renewed every third of its TTL; each confirmation moves its deadline to (time the renewal was
 * sent + TTL). When the deadline passes unconfirmed, the lease counts as lost at that moment, even
 * if etcd is silent or unreachable, so that nothing goes on believing it holds a lease that may be
 * gone. A broken stream is opened again (on another member if need be) without reporting a loss.
 */
export class KeepAliveHub {
  private readonly entries = new Map<bigint, Entry>();
  private readonly shards: Shard[];
  private nextShard = 0;
  private closed = false;

  /** @internal */
  constructor(
    private readonly rpc: () => ServiceClient<typeof LeaseDefinition>,
    private readonly diagnostics: Diagnostics,
  ) {
    this.shards = Array.from({ length: STREAMS }, () => {
      const shard: Shard = {
        entries: new Set(),
        stream: new ResilientStream(
          {
            wanted: () => shard.entries.size > 0 && !this.closed,
            request: (request) => request,
            // hasleader: a member cut off from its leader ends the stream instead of holding the
            // renewals, which it cannot apply, until the leases run out (clientv3 RequireLeader).
            open: (requests, signal) => rpc().leaseKeepAlive(requests, { signal, metadata: Metadata({ hasleader: "true" }) }),
            opened: () => {
              for (const entry of shard.entries) {
                entry.sent = [];
                this.send(entry);
              }
            },
            received: (response) => this.confirm(response),
            failed: (err) => {
              // A lease not yet confirmed has no deadline to wait for: its keepAlive() fails once
              // no member can be reached, or at once on an error that reconnecting would not cure.
              // One member's lost connection is neither: the stream opens again on another.
              if ((err instanceof EndpointError && err.noneReachable) || !worthReconnecting(err)) {
                for (const entry of shard.entries) if (entry.starting) this.fail(entry, err);
              }
              // Otherwise open it again; a lease whose deadline passes meanwhile is reported lost by its timer.
              return true;
            },
          },
          { maxBackoffMs: MAX_RECONNECT_WAIT_MS },
        ),
      };
      return shard;
    });
  }

  /**
   * Starts keeping a lease alive; resolves at etcd's first answer, which gives the lease's TTL.
   * The first renewal goes out at once: under load a lease granted moments ago can run out while
   * a separate TimeToLive call waits its turn. A client keeps each lease alive once: calls for a
   * lease already kept (or being started) share its handle, and closing that handle stops it for
   * all of them.
   */
  keepAlive(leaseId: Int64, signal: AbortSignal | undefined, lossMarginMs = 0): Promise<LeaseKeepAlive> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    const id = toInt64(leaseId, "lease keepAlive id");
    const existing = this.entries.get(id);
    if (existing) return existing.started;
    if (signal?.aborted) return Promise.reject(canceled(signal));
    const shard = this.shards[this.nextShard++ % this.shards.length]!;
    const entry: Entry = {
      id,
      shard,
      sent: [],
      ttlMs: 0,
      lossMarginMs,
      starting: undefined,
      started: undefined as never,
      sendTimer: undefined,
      lostTimer: undefined,
      handle: undefined as never,
      detach: () => undefined,
    };
    entry.started = new Promise((resolve, reject) => (entry.starting = { resolve, reject }));
    entry.handle = new Handle(id, 0, () => this.drop(entry, "closed"));
    if (signal) {
      const onAbort = () => (entry.starting ? this.fail(entry, canceled(signal)) : this.drop(entry, "closed"));
      signal.addEventListener("abort", onAbort, { once: true });
      entry.detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.entries.set(id, entry);
    shard.entries.add(entry);
    this.send(entry);
    shard.stream.start();
    return entry.started;
  }

  /** Renews a lease once over a stream of its own; its new TTL in seconds. */
  async keepAliveOnce(leaseId: Int64, signal: AbortSignal | undefined): Promise<bigint> {
    const id = toInt64(leaseId, "lease keepAliveOnce id");
    const requests = new AsyncQueue<Partial<LeaseKeepAliveRequest>>();
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      requests.push({ ID: id });
      for await (const response of this.rpc().leaseKeepAlive(requests.drain(), { signal: abort.signal })) {
        if (response.TTL <= 0n) throw leaseNotFound();
        return response.TTL;
      }
      throw leaseNotFound();
    } catch (err) {
      if (signal?.aborted) throw new CallCanceledError("keepAliveOnce was canceled by its AbortSignal", { cause: signal.reason });
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      requests.end();
      abort.abort();
    }
  }

  close(): void {
    this.closed = true;
    for (const entry of [...this.entries.values()]) {
      if (entry.starting) this.fail(entry, new ClientClosedError());
      else this.drop(entry, "closed");
    }
  }

  /** Gives up on a lease whose keepAlive() has not resolved yet. */
  private fail(entry: Entry, err: unknown): void {
    const { reject } = entry.starting!;
    entry.starting = undefined;
    this.drop(entry, "closed");
    reject(err);
  }

  private drop(entry: Entry, reason: LeaseLostError["reason"]): void {
    if (reason !== "closed" && !entry.handle.signal.aborted) this.diagnostics.publish("leaseLost", { leaseId: entry.id, reason });
    clearTimeout(entry.sendTimer);
    clearTimeout(entry.lostTimer);
    entry.detach();
    entry.handle.markLost(reason);
    if (this.entries.get(entry.id) !== entry) return;
    this.entries.delete(entry.id);
    entry.shard.entries.delete(entry);
    // No lease left on a stream: close it rather than keep a connection busy for nothing.
    if (entry.shard.entries.size === 0) entry.shard.stream.restart();
  }

  /** Arms the lease's one deadline timer: only at the first answer, then again each time it fires early. */
  private armLostTimer(entry: Entry): void {
    // Node fires a timer longer than 2^31-1 ms at once, so a distant deadline is reached in steps.
    const lostAt = () => entry.handle.deadline - entry.lossMarginMs;
    const wait = Math.min(Math.max(0, lostAt() - Date.now()), MAX_TIMER_MS);
    entry.lostTimer = unref(setTimeout(() => (Date.now() >= lostAt() ? this.drop(entry, "deadline") : this.armLostTimer(entry)), wait));
  }

  /**
   * Sends a renewal now if the stream is open and the last one was answered, and plans the next
   * one a third of the TTL later. Until the first answer gives the TTL, nothing is planned: that
   * renewal stays in flight, or `opened` sends it on the next stream.
   */
  private send(entry: Entry): void {
    const waiting = entry.sent[0];
    if (waiting === undefined) {
      if (entry.shard.stream.send({ ID: entry.id })) entry.sent.push(Date.now());
    } else {
      // The last renewal is still unanswered when the next is due: the member holds it (frozen,
      // cut off, its link silently dropping packets, or far behind on applying writes). Move the
      // stream to another member now, where the renewal still lands with a third of the TTL to
      // spare, rather than wait for the connection's ping, which could come after the deadline.
      entry.shard.stream.abandon(`lease ${entry.id}: a renewal went unanswered for ${Date.now() - waiting} ms`);
    }
    if (entry.ttlMs > 0) this.planRenewal(entry);
  }

  /** (Re)starts the renewal timer; its delay is set once, from the first answer's TTL, which etcd keeps for the lease's life. */
  private planRenewal(entry: Entry): void {
    entry.sendTimer = restart(entry.sendTimer, () => unref(setTimeout(() => this.send(entry), Math.min(Math.max(250, entry.ttlMs / 3), MAX_TIMER_MS))));
  }

  private confirm(response: LeaseKeepAliveResponse): void {
    const entry = this.entries.get(response.ID);
    if (!entry) return;
    const sentAt = entry.sent.shift();
    if (response.TTL <= 0n) {
      // etcd answers TTL 0 for a lease it does not know.
      if (entry.starting) this.fail(entry, leaseNotFound());
      else this.drop(entry, "gone");
      return;
    }
    // An answer to a renewal sent on an earlier stream says nothing about when it was sent.
    if (sentAt === undefined) return;
    const firstAnswer = entry.ttlMs === 0;
    entry.ttlMs = Number(response.TTL) * 1000;
    const deadline = sentAt + entry.ttlMs;
    if (deadline > entry.handle.deadline) {
      entry.handle.deadline = deadline;
      // A deadline only moves later, so the timer armed for an earlier one fires early, finds it
      // moved and waits the rest: re-arming it at every answer would make a timer per renewal.
      if (entry.lostTimer === undefined) this.armLostTimer(entry);
    }
    if (firstAnswer) {
      entry.starting!.resolve(entry.handle);
      entry.starting = undefined;
    }
    const lateMs = Date.now() - sentAt - entry.ttlMs / 3;
    if (lateMs >= 0) {
      this.diagnostics.publish("keepAliveLate", { leaseId: entry.id, lateMs });
      // The answer came after the next renewal was due, so that one was held back: send it now
      // rather than at the next tick, which could leave the lease up to a third of its TTL less.
      // The first answer too: planned from it, the next renewal could come after the deadline.
      this.send(entry);
    } else if (firstAnswer) {
      this.planRenewal(entry);
    }
  }
}
