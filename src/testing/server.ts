import { Status } from "nice-grpc-common";
import type {
  CompactionRequest,
  DeleteRangeRequest,
  LeaseGrantRequest,
  LeaseKeepAliveRequest,
  LeaseRevokeRequest,
  LeaseTimeToLiveRequest,
  PutRequest,
  RangeRequest,
  ResponseHeader,
  TxnRequest,
  WatchRequest,
} from "../../gen/etcdserverpb/rpc.js";
import { ErrRequestTooLarge, InvalidArgumentError } from "../core/errors.js";
import { type Clock, systemClock } from "./clock.js";
import { KvService } from "./kv.js";
import { Lessor } from "./lessor.js";
import { Mvcc } from "./mvcc.js";
import { Refusal, refusal } from "./refusal.js";
import { varintLength } from "./varint.js";
import { WatchStream } from "./watch.js";

/** How an in-memory etcd is set up: the etcd flags it has, and the clock it runs on. */
export interface MemoryEtcdOptions {
  /** The clock leases expire by and progress notifications tick on. Default: the system clock. */
  clock?: Clock;
  /**
   * etcd's --watch-progress-notify-interval, in ms: how often a watcher that asked for progress
   * notifications gets one while no events come. Default 10 minutes, as etcd's; at least 100.
   */
  watchProgressNotifyIntervalMs?: number;
  /**
   * etcd's --max-request-bytes: writes larger than this fail with ErrRequestTooLarge, and watch
   * responses over it plus 512 KiB are sent in fragments. Default 1.5 MiB, as etcd's.
   */
  maxRequestBytes?: number;
}

// The IDs and raft term of a default etcd started alone with no flags: one member, elected at term 2.
const CLUSTER_ID = 0xcdf818194e3a8c32n;
const MEMBER_ID = 0x8e9e05c52164694dn;
const RAFT_TERM = 2n;

const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** What etcd's gRPC server takes beyond --max-request-bytes for a message's own overhead. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
const DEFAULT_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;
const MIN_PROGRESS_INTERVAL_MS = 100;
/**
 * What etcd's raft entry adds to the request it carries: its header (13 bytes with this member's
 * request IDs), then the request's field tag; the request's length comes on top.
 */
const RAFT_ENTRY_OVERHEAD = 14;

/** The services the in-memory etcd does not serve, and what each does that it does not. */
const NOT_SERVED: Record<string, string> = {
  "etcdserverpb.Cluster": "cluster membership: it is a single member without peers",
  "etcdserverpb.Maintenance": "maintenance: status, alarms, defragmentation, hashes, snapshots, leader moves and downgrades",
  "etcdserverpb.Auth": "authentication, users and roles",
  "v3lockpb.Lock": "etcd's lock service (the Mutex recipe works on it)",
  "v3electionpb.Election": "etcd's election service (the Election recipe works on it)",
};

/** Where the server sends the responses of a stream. */
export interface StreamResponses {
  send(message: object): void;
  /** Ends the stream with status OK. */
  end(): void;
  fail(refusal: Refusal): void;
}

/** What the server does with a stream's requests and end. */
export interface StreamRequests {
  receive(request: unknown): void;
  /** The client ended its requests. */
  end(): void;
  /** The client cancelled the call. */
  cancel(): void;
}

const NO_REQUESTS: StreamRequests = { receive() {}, end() {}, cancel() {} };

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(name, `must be a positive integer, got ${String(value)}`);
  return value;
}

function checkClock(clock: Clock | undefined): Clock {
  if (clock === undefined) return systemClock;
  if (typeof clock !== "object" || clock === null || typeof clock.now !== "function" || typeof clock.setTimer !== "function") {
    throw new InvalidArgumentError("clock", "must have now() and setTimer(callback, delayMs), as a ManualClock has");
  }
  return clock;
}

/**
 * An etcd server in memory: the KV, Watch and Lease services of a single member, on an MVCC
 * store, with etcd's checks and errors. Each call is answered at once, in the order calls come:
 * there is no raft log to wait for.
 */
export class MemoryServer {
  private readonly store: Mvcc;
  private readonly lessor: Lessor;
  private readonly kv: KvService;
  private readonly watchStreams = new Set<WatchStream>();
  private readonly clock: Clock;
  private readonly maxRequestBytes: number;
  private readonly progressIntervalMs: number;
  private readonly unaryCalls: Record<string, (request: unknown, requestBytes: number) => object>;

  constructor(options: MemoryEtcdOptions = {}) {
    this.clock = checkClock(options.clock);
    this.maxRequestBytes = positiveInteger(options.maxRequestBytes, "maxRequestBytes", DEFAULT_MAX_REQUEST_BYTES);
    const interval = positiveInteger(options.watchProgressNotifyIntervalMs, "watchProgressNotifyIntervalMs", DEFAULT_PROGRESS_INTERVAL_MS);
    // etcd raises a shorter interval to its minimum.
    this.progressIntervalMs = Math.max(MIN_PROGRESS_INTERVAL_MS, interval);
    this.store = new Mvcc((revision) => {
      for (const stream of this.watchStreams) stream.notify(revision);
    });
    this.lessor = new Lessor(this.store, this.clock, MEMBER_ID);
    const propose = (requestBytes: number) => {
      if (requestBytes + RAFT_ENTRY_OVERHEAD + varintLength(requestBytes) > this.maxRequestBytes) throw refusal(ErrRequestTooLarge);
    };
    this.kv = new KvService(this.store, this.lessor, (revision) => this.header(revision), this.maxRequestBytes, propose);
    const { kv, lessor, store } = this;
    this.unaryCalls = {
      "/etcdserverpb.KV/Range": (r) => kv.range(r as RangeRequest),
      "/etcdserverpb.KV/Put": (r, bytes) => kv.put(r as PutRequest, bytes),
      "/etcdserverpb.KV/DeleteRange": (r, bytes) => kv.deleteRange(r as DeleteRangeRequest, bytes),
      "/etcdserverpb.KV/Txn": (r, bytes) => kv.txn(r as TxnRequest, bytes),
      "/etcdserverpb.KV/Compact": (r, bytes) => kv.compact(r as CompactionRequest, bytes),
      "/etcdserverpb.Lease/LeaseGrant": (r, bytes) => {
        const { ID, TTL } = r as LeaseGrantRequest;
        propose(bytes);
        const lease = lessor.grant(ID, TTL);
        return { header: this.header(0n), ID: lease.id, TTL: lease.ttl };
      },
      "/etcdserverpb.Lease/LeaseRevoke": (r, bytes) => {
        propose(bytes);
        lessor.revoke((r as LeaseRevokeRequest).ID);
        return { header: this.header(0n) };
      },
      "/etcdserverpb.Lease/LeaseTimeToLive": (r) => {
        const { ID, keys } = r as LeaseTimeToLiveRequest;
        const lease = lessor.lookup(ID);
        // etcd answers for a lease it does not know with a TTL of -1, not an error.
        if (!lease) return { header: this.header(0n), ID, TTL: -1n };
        return { header: this.header(0n), ID, TTL: lessor.secondsLeft(lease), grantedTTL: lease.ttl, keys: keys ? store.keysOf(ID) : [] };
      },
      "/etcdserverpb.Lease/LeaseLeases": () => ({ header: this.header(0n), leases: lessor.ids().map((ID) => ({ ID })) }),
    };
  }

  /**
   * The response header etcd sends: its cluster, member and term, and `revision`, or (0n) the
   * store's revision now.
   */
  header(revision: bigint): ResponseHeader {
    return { clusterId: CLUSTER_ID, memberId: MEMBER_ID, revision: revision === 0n ? this.store.revision : revision, raftTerm: RAFT_TERM };
  }

  /** What the server does not do of the call's service, if it does not serve it. */
  notServed(path: string): string | undefined {
    const service = path.split("/")[1] ?? "";
    return Object.hasOwn(NOT_SERVED, service) ? NOT_SERVED[service] : undefined;
  }

  /**
   * Takes a request of `requestBytes` off the wire: etcd's gRPC server refuses one over
   * --max-request-bytes plus its overhead before anything else looks at it.
   */
  received(requestBytes: number): void {
    const max = this.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    if (requestBytes > max) throw new Refusal(Status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${requestBytes} vs. ${max})`);
  }

  /** Answers a unary call: the response, or a thrown Refusal. */
  unary(path: string, request: unknown, requestBytes: number): object {
    const call = Object.hasOwn(this.unaryCalls, path) ? this.unaryCalls[path] : undefined;
    if (!call) throw new Refusal(Status.UNIMPLEMENTED, `unknown method ${path}`);
    this.lessor.expireDue();
    return call(request, requestBytes);
  }

  /**
   * Opens a streaming call: a server-streaming one with its one `request`, answered at once; a
   * bidirectional one, whose requests go to what it returns.
   */
  stream(path: string, responses: StreamResponses, request?: unknown): StreamRequests {
    this.lessor.expireDue();
    switch (path) {
      case "/etcdserverpb.KV/RangeStream":
        try {
          this.kv.rangeStream(request as RangeRequest, (part) => responses.send(part));
          responses.end();
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          responses.fail(err);
        }
        return NO_REQUESTS;
      case "/etcdserverpb.Watch/Watch":
        return this.watch(responses);
      case "/etcdserverpb.Lease/LeaseKeepAlive":
        return this.keepAlive(responses);
      default:
        responses.fail(new Refusal(Status.UNIMPLEMENTED, `unknown method ${path}`));
        return NO_REQUESTS;
    }
  }

  /** Stops the timers and ends the watch streams. */
  close(): void {
    this.lessor.close();
    for (const stream of this.watchStreams) stream.close();
    this.watchStreams.clear();
  }

  private watch(responses: StreamResponses): StreamRequests {
    const context = {
      store: this.store,
      clock: this.clock,
      header: (revision: bigint) => this.header(revision),
      progressIntervalMs: this.progressIntervalMs,
      fragmentBytes: this.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    };
    const stream = new WatchStream(context, (response) => responses.send(response));
    this.watchStreams.add(stream);
    return {
      receive: (request) => {
        this.lessor.expireDue();
        stream.receive(request as WatchRequest);
      },
      // etcd keeps a watch stream whose client ended its requests until the client cancels it.
      end: () => undefined,
      cancel: () => {
        stream.close();
        this.watchStreams.delete(stream);
      },
    };
  }

  /** Renews a lease per request; TTL 0 for a lease that does not exist (any more), as etcd answers. */
  private keepAlive(responses: StreamResponses): StreamRequests {
    return {
      receive: (request) => {
        const { ID } = request as LeaseKeepAliveRequest;
        // The header is taken before the renewal, as etcd takes it.
        const header = this.header(0n);
        responses.send({ header, ID, TTL: this.lessor.renew(ID) ?? 0n });
      },
      end: () => responses.end(),
      cancel: () => undefined,
    };
  }
}
