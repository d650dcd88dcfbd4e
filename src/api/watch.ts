import { Metadata, Status } from "nice-grpc-common";
import {
  type DeepPartial,
  type WatchDefinition,
  type WatchRequest,
  type WatchResponse as WatchResponsePb,
  WatchCreateRequest_FilterType,
} from "../../gen/etcdserverpb/rpc.js";
import { type Event as EventPb, Event_EventType } from "../../gen/mvccpb/kv.js";
import { type Bytes, toBytes } from "../core/bytes.js";
import {
  CallCanceledError,
  ClientClosedError,
  ErrCompacted,
  EtcdError,
  MessageTooLargeError,
  EtcdServerError,
  InvalidArgumentError,
  UnsupportedByTransportError,
  WatcherBusyError,
} from "../core/errors.js";
import { checkSignal } from "../core/call-checks.js";
import { unref } from "../core/timers.js";
import { serverErrorFor } from "../core/server-error-lookup.js";
import type { Diagnostics } from "../core/diagnostics.js";
import { type Int64, toNonNegativeInt64 } from "../core/int64.js";
import { KeyValue, type KeySelection, ResponseHeader, selectKeys } from "./kv.js";
import { AsyncQueue } from "../core/queue.js";
import { ResilientStream, worthReconnecting } from "../pipeline/resilient-stream.js";
import type { ServiceClient, WireLimits } from "../pipeline/call-pipeline.js";

export interface WatchOptions extends KeySelection {
  /** Deliver changes from this revision on, replaying history; by default changes after creation. */
  startRevision?: Int64;
  /** Include each key's previous value in `prevKv`. */
  prevKv?: boolean;
  /** Leave out put events. */
  noPut?: boolean;
  /** Leave out delete events. */
  noDelete?: boolean;
  /** Have etcd send progress notifications while the watcher is idle (at its --watch-progress-notify-interval). */
  progressNotify?: boolean;
  /** Ends the watcher; its iteration then throws CallCanceledError. */
  signal?: AbortSignal;
  /**
   * The most responses held for a reader that has not taken them yet. Past it the watcher fails
   * with WatchOverflowError, which says the revision to watch again from, and what it held is let
   * go: one slow reader can neither stall the other watchers nor fill the memory. Default 10,000.
   */
  maxBuffered?: number;
}

const DEFAULT_MAX_BUFFERED = 10_000;

/** One change to a key. */
export interface WatchEvent {
  /** A put (a create or an update) or a delete (an expired lease's key included). */
  type: "put" | "delete";
  /** The key after the change; for a delete only the key and modRevision are set. */
  kv: KeyValue;
  /** The key before the change, when `prevKv` was asked for. */
  prevKv: KeyValue | undefined;
}

/**
 * What a watcher yields: the events of one or more whole revisions (a revision is never split
 * across two responses), or a progress notification.
 */
export interface WatchResponse {
  /** Which member sent it, and the store's revision then. */
  header: ResponseHeader;
  /** The changes, in revision order; empty for a progress notification. */
  events: WatchEvent[];
  /** No events: every change up to `header.revision` has been delivered. */
  progress: boolean;
}

/** A watcher's start revision (or its resume point) was compacted away: an ErrCompacted with the oldest revision still kept. */
export class WatchCompactedError extends ErrCompacted {
  /** "ErrCompacted", as etcd's own error: logs read the same whichever way it came. */
  override name = "ErrCompacted";
  constructor(
    /** The revision of the compaction: a watch can start there, but the events before it are gone. */
    readonly compactRevision: bigint,
  ) {
    super("etcdserver: mvcc: required revision has been compacted", Status.OUT_OF_RANGE, undefined);
  }
}

/**
 * A watcher's reader fell more than `maxBuffered` responses behind: the watcher was cancelled and
 * what it held let go. Watch again from `resumeRevision` to go on without a gap.
 */
export class WatchOverflowError extends EtcdError {
  override name = "WatchOverflowError";
  constructor(
    /** The first revision the reader was not given. */
    readonly resumeRevision: bigint,
    maxBuffered: number,
  ) {
    super(`the watcher's reader fell more than ${maxBuffered} responses behind; watch again from revision ${resumeRevision}`);
  }
}

/** What a watch hub needs of its client. */
export interface WatchHubContext {
  /** The wire's limits (whether a stream takes requests once open). */
  limits: WireLimits;
  /** The receive limit (maxCallRecvMsgSize); negative for none. */
  maxResponseBytes: number;
  diagnostics: Diagnostics;
  /**
   * Whether every member answers a progress request in order with its events (see
   * answersProgressInOrder); taken as true when absent.
   */
  progressRequestsOrdered?: () => Promise<boolean>;
}

/**
 * Whether an etcd of `version` answers a progress request only after it has sent every event up
 * to the revision it reports. Before 3.4.31, and 3.5 before 3.5.13, it may answer at once with its
 * current revision while a watcher is still catching up, events still to come (etcd-io/etcd#15220),
 * or not at all (etcd-io/etcd#17557); Kubernetes draws the same line for its watch cache.
 */
export function answersProgressInOrder(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split(/[.+-]/, 3).map(Number);
  if (major !== 3) return major > 3;
  if (minor === 4) return patch >= 31;
  if (minor === 5) return patch >= 13;
  return minor > 5;
}

const NO_WATCH_ID = -1n;

const PROGRESS_REQUEST: DeepPartial<WatchRequest> = { requestUnion: { $case: "progressRequest", progressRequest: {} } };

/**
 * How long a watch stream may be silent before the client asks its member for a progress
 * notification, and how long that may go unanswered before the stream moves to another member.
 * A frozen member, or a link that drops packets without closing, would otherwise hold the
 * watchers until the connection's ping gives up (15 s by default). etcd answers a progress
 * request at once when its watchers are up to date, and one that is catching up sends events.
 */
const QUIET_MS = 5_000;
const PROBE_ANSWER_MS = 2_000;

/**
 * The typed error for a watch cancel reason. etcd sends some reasons as the text of a Go gRPC
 * status ("rpc error: code = PermissionDenied desc = etcdserver: permission denied").
 */
function cancelError(reason: string): EtcdServerError {
  const status = /^rpc error: code = (\w+) desc = (.*)$/s.exec(reason);
  if (!status) return serverErrorFor(reason, undefined, undefined);
  const name = status[1]!.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase().replace(/^CANCELED$/, "CANCELLED");
  return serverErrorFor(status[2]!, (Status as unknown as Record<string, Status | undefined>)[name], undefined);
}

/** Bytes of the keys and values of events, as they count toward the receive limit. */
function eventBytes(events: EventPb[]): number {
  let bytes = 0;
  for (const { kv, prevKv } of events) bytes += (kv?.key.length ?? 0) + (kv?.value.length ?? 0) + (prevKv?.key.length ?? 0) + (prevKv?.value.length ?? 0);
  return bytes;
}

/** The revision a response begins at: its first event's, or past the revision a progress reports. */
function firstRevision(response: WatchResponse): bigint {
  const [first] = response.events;
  return first ? first.kv.modRevision : response.header.revision + 1n;
}

function toEvent(pb: EventPb): WatchEvent {
  return {
    type: pb.type === Event_EventType.DELETE ? "delete" : "put",
    kv: new KeyValue(pb.kv!),
    prevKv: pb.prevKv ? new KeyValue(pb.prevKv) : undefined,
  };
}

/** The request that creates a watcher on the stream, from where it is to (re)start. */
function createRequest(state: WatcherState): DeepPartial<WatchRequest> {
  return {
    requestUnion: {
      $case: "createRequest",
      createRequest: {
        key: toBytes(state.key, "watch key"),
        rangeEnd: state.rangeEnd,
        startRevision: state.nextRevision,
        progressNotify: state.progressNotify,
        filters: state.filters,
        prevKv: state.prevKv,
        watchId: state.id,
        fragment: true,
      },
    },
  };
}

/** A watcher's promise that etcd confirmed it, made only if someone asks (most never do). */
type Readiness =
  | { state: "unasked" | "confirmed" }
  | { state: "failed"; error: unknown }
  | { state: "waiting"; promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void };

/** Shared by every watcher in these states: nothing allocated per watcher until `ready` is asked for. */
const UNASKED: Readiness = { state: "unasked" };
const CONFIRMED: Readiness = { state: "confirmed" };

/**
 * Receives a watcher's responses as they arrive, instead of a `for await` loop (see
 * `Watcher.subscribe`). One observer may serve many watchers: each call names its watcher.
 */
export interface WatchObserver {
  /** A response, in order; throwing cancels the watcher and the error goes to `error`. */
  next(response: WatchResponse, watcher: Watcher): void;
  /** The watcher failed: a server error, ErrCompacted, CallCanceledError from its AbortSignal, ClientClosedError, or what `next` threw. Nothing follows. */
  error(error: unknown, watcher: Watcher): void;
  /** The watcher was cancelled (`cancel()`, or etcd ended it without an error). Nothing follows. */
  complete?(watcher: Watcher): void;
  /** etcd confirmed the watcher, as `watcher.ready` resolves; called at most once, before its first response. */
  ready?(watcher: Watcher): void;
}

/**
 * An observer's own error in `error`, `complete` or `ready` is not the watch's to handle: it is
 * thrown on its own, as an uncaught exception (which ends a Node process, as a throwing
 * EventEmitter listener does), so that it cannot break the stream the watchers share.
 */
function throwLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * What the hub keeps of a watcher. Thousands of watchers are common, so it is one object with
 * its methods on the prototype: no closures, no promise and no array until they are needed.
 */
class WatcherState {
  /** The revision to (re)start from: after the last event delivered; 0 until etcd confirmed. */
  nextRevision: bigint;
  /** Events of a response etcd split into fragments, until its last fragment arrives. */
  fragments: EventPb[] | undefined;
  /** Bytes of keys and values in `fragments`, held to the receive limit. */
  fragmentBytes = 0;
  /** Whether etcd confirmed the watcher on the current stream (progress reports cover only those). */
  active = false;
  /**
   * Where the create request of this watcher stands among the requests written on the current
   * stream (see WatchHub.written): a progress answer covers only watchers created before it was asked.
   */
  createdAt = 0;
  /** The responses (and the end) for `next()`, or those that came before an observer subscribed. */
  readonly queue = new AsyncQueue<WatchResponse>();
  private readiness: Readiness = UNASKED;
  private abortSignal: AbortSignal | undefined;
  private observer: WatchObserver | undefined;
  /** The watcher its observer is told about. */
  private subscriber: Watcher | undefined;

  constructor(
    readonly hub: WatchHub,
    readonly id: number,
    /** A single key given as a string stays the caller's string until a create is sent: about 200 bytes a watcher less than its encoding. */
    readonly key: Bytes,
    readonly rangeEnd: Uint8Array | undefined,
    readonly filters: WatchCreateRequest_FilterType[] | undefined,
    readonly prevKv: boolean,
    readonly progressNotify: boolean,
    startRevision: bigint,
    private readonly maxBuffered: number,
  ) {
    this.nextRevision = startRevision;
  }

  get ready(): Promise<void> {
    const readiness = this.readiness;
    switch (readiness.state) {
      case "confirmed":
        return Promise.resolve();
      case "failed": {
        const refused = Promise.reject(readiness.error);
        refused.catch(() => undefined);
        return refused;
      }
      case "waiting":
        return readiness.promise;
      case "unasked": {
        let resolve!: () => void;
        let reject!: (error: unknown) => void;
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        // Failures reach the iteration; `ready` may well go unobserved.
        promise.catch(() => undefined);
        this.readiness = { state: "waiting", promise, resolve, reject };
        return promise;
      }
    }
  }

  /** Whether an observer subscribed, even one already told of the end: the watcher has no other reader then. */
  get observed(): boolean {
    return this.subscriber !== undefined;
  }

  /** Hands the responses to `observer` from now on: first those already queued, then the end if it came. */
  subscribe(observer: WatchObserver, watcher: Watcher): void {
    this.observer = observer;
    this.subscriber = watcher;
    const { queue } = this;
    if (this.readiness === CONFIRMED) this.tell(observer, "ready");
    for (const response of queue.takeAll()) {
      this.deliver(response);
      if (this.observer !== observer) return;
    }
    if (queue.ended) this.finish();
  }

  confirm(): void {
    const readiness = this.readiness;
    if (readiness.state !== "unasked" && readiness.state !== "waiting") return;
    this.readiness = CONFIRMED;
    if (readiness.state === "waiting") readiness.resolve();
    if (this.observer) this.tell(this.observer, "ready");
  }

  /** A response for the watcher's reader: its observer, or the queue that `next()` reads. */
  deliver(response: WatchResponse): void {
    const observer = this.observer;
    if (!observer) {
      const { queue } = this;
      if (queue.size < this.maxBuffered) return queue.push(response);
      // What the reader has not taken is let go (by the cancel), and it is told where that began.
      return this.abandon(new WatchOverflowError(firstRevision(queue.peek() ?? response), this.maxBuffered));
    }
    try {
      observer.next(response, this.subscriber!);
    } catch (err) {
      this.abandon(err);
      // A watcher that had ended already (its queue handed over at subscribe) ends here for the observer.
      if (this.observer === observer) {
        this.observer = undefined;
        this.tell(observer, "error", err);
      }
    }
  }

  /** Ends the watcher: its iteration throws `error` after what was delivered, `ready` rejects with it. */
  fail(error: unknown): void {
    this.detach();
    if (!this.queue.ended) {
      this.queue.fail(error);
      this.finish();
    }
    this.refuseReadiness(error);
  }

  /**
   * Ends the watcher's iteration after what was delivered. A `ready` still waiting for etcd
   * rejects: the watcher was cancelled before etcd confirmed it, and its answer will be dropped.
   */
  end(): void {
    this.detach();
    this.refuseReadiness(new CallCanceledError("the watcher was cancelled before etcd confirmed it"));
    if (this.queue.ended) return;
    this.queue.end();
    this.finish();
  }

  /** Has `signal` end the watcher (as cancel() does), failing its iteration with CallCanceledError. */
  attach(signal: AbortSignal): void {
    this.abortSignal = signal;
    signal.addEventListener("abort", this, { once: true });
  }

  /** The AbortSignal's listener: the state is an EventListener object, so no closure is kept. */
  handleEvent(): void {
    this.abandon(new CallCanceledError("the watcher was canceled by its AbortSignal", { cause: this.abortSignal?.reason }));
  }

  /** Ends the watcher at once: responses its reader has not taken are let go. */
  cancel(): void {
    this.queue.clear();
    this.hub.remove(this);
  }

  private refuseReadiness(error: unknown): void {
    const readiness = this.readiness;
    if (readiness.state !== "unasked" && readiness.state !== "waiting") return;
    this.readiness = { state: "failed", error };
    if (readiness.state === "waiting") readiness.reject(error);
  }

  private abandon(error: unknown): void {
    this.fail(error);
    this.cancel();
  }

  /** Tells the observer, if any, how the watcher ended (the queue says): its last call. */
  private finish(): void {
    const observer = this.observer;
    if (!observer) return;
    this.observer = undefined;
    const failed = this.queue.failedWith;
    if (failed) this.tell(observer, "error", failed.error);
    else this.tell(observer, "complete");
  }

  private tell(observer: WatchObserver, call: "ready" | "complete" | "error", error?: unknown): void {
    const watcher = this.subscriber!;
    try {
      if (call === "error") observer.error(error, watcher);
      else observer[call]?.(watcher);
    } catch (err) {
      throwLater(err);
    }
  }

  private detach(): void {
    this.abortSignal?.removeEventListener("abort", this);
    this.abortSignal = undefined;
  }
}

/** A stream of changes to a key or range; iterate it with `for await`, leave the loop to end it. */
export class Watcher implements AsyncIterable<WatchResponse>, AsyncIterator<WatchResponse, undefined> {
  /** @internal */
  constructor(private readonly state: WatcherState) {}

  /** Resolves once etcd has confirmed the watcher; rejects if it failed first. */
  get ready(): Promise<void> {
    return this.state.ready;
  }

  /** A watcher is its own iterator: one reader, as there is one queue of responses. */
  [Symbol.asyncIterator](): AsyncIterator<WatchResponse, undefined> {
    return this;
  }

  /**
   * The next response, as `for await` takes it; done once the watcher was cancelled, or etcd ended
   * it without an error. Rejects with what ended the watcher, or with WatcherBusyError when an
   * observer reads it.
   */
  next(): Promise<IteratorResult<WatchResponse, undefined>> {
    if (this.state.observed) return Promise.reject(new WatcherBusyError("next() was called on a watcher that an observer subscribed to"));
    return this.state.queue.next();
  }

  /**
   * Hands each response to `observer` as it arrives, instead of a `for await` loop: the way for
   * thousands of watchers. A loop keeps its frame and a waiting promise per watcher between
   * responses, and the last response with them; an observer, which one object can be for every
   * watcher, keeps nothing. What came before is handed over before `subscribe` returns: `ready`
   * if etcd confirmed the watcher, the responses that arrived, and the end if it came. The
   * watcher then has no other reader: a later `next()` rejects, and another `subscribe` throws,
   * WatcherBusyError.
   */
  subscribe(observer: WatchObserver): void {
    const { state } = this;
    if (state.observed || state.queue.waiting) throw new WatcherBusyError("subscribe() was called on a watcher that is already being read");
    state.subscribe(observer, this);
  }

  /** Leaving a `for await` loop early cancels the watcher. */
  return(): Promise<IteratorResult<WatchResponse, undefined>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Stops the watcher; iteration ends at once, and responses not yet taken are let go. */
  cancel(): void {
    this.state.cancel();
  }

  /**
   * Asks etcd for a progress notification for every watcher of this client. Over etcd's HTTP
   * gateway it throws UnsupportedByTransportError: use `progressNotify` there. etcd before 3.4.31,
   * and 3.5 before 3.5.13, may answer with a revision whose events a watcher catching up from an
   * older revision has yet to receive, or not answer at all.
   */
  requestProgress(): void {
    this.state.hub.requestProgress();
  }

  /**
   * Whether `requestProgress()` can be sent here and every member answers it only once it has
   * sent the events up to the revision it reports: false over the gateway, and when a member runs
   * etcd before 3.4.31 or 3.5 before 3.5.13. The members' versions are asked once per endpoint
   * list (a member silent for a second is left out). A cache of your own that takes a progress
   * answer as "caught up to this revision" should check this first, as `createCache` does.
   */
  progressRequestsUsable(): Promise<boolean> {
    return this.state.hub.progressRequestsUsable();
  }
}

/**
 * All watchers of a client share one Watch stream (as clientv3's watcher does). When the stream
 * breaks, or its member loses the leader, it is opened again and every watcher is created anew
 * from the revision after the last one it received: no event is lost or repeated. (A stale auth
 * token refused at re-creation is not refreshed here yet: the watcher then ends with
 * ErrInvalidAuthToken.)
 */
export class WatchHub {
  private readonly watchers = new Map<number, WatcherState>();
  private nextId = 1;
  /** Queued on it: a watcher to create (its request is built when the stream takes it), or a request. */
  private readonly stream: ResilientStream<DeepPartial<WatchRequest>, WatchResponsePb, WatcherState | DeepPartial<WatchRequest>>;
  /** Creates sent on the current stream and not yet answered, oldest first: etcd answers them in order. */
  private pending: WatcherState[] = [];
  /** A progress request etcd has not answered yet: sent again on a new stream, as a broken one may have lost it. */
  private progressAsked = false;
  private closedWith: Error | undefined;
  /** When the stream last heard from its member (epoch ms). */
  private lastHeard = 0;
  /** When the client asked a silent member for progress on its own, if it is waiting for the answer. */
  private probeSentAt: number | undefined;
  private silenceCheck: ReturnType<typeof setInterval> | undefined;
  /** Requests written on the current stream (creates and progress requests), counted in order. */
  private written = 0;
  /**
   * For each progress request awaiting its answer, oldest first, the count `written` had when it
   * was sent. etcd answers one for every watcher it has then (watch ID -1); a watcher created after
   * the request may be confirmed before that answer arrives while it still replays history, and
   * the answer says nothing of it.
   */
  private progressAskedAt: number[] = [];

  private readonly limits: WireLimits;
  /** The receive limit (maxCallRecvMsgSize), which a response gathered from fragments is held to; negative for none. */
  private readonly maxResponseBytes: number;
  private readonly diagnostics: Diagnostics;
  private readonly progressRequestsOrdered: (() => Promise<boolean>) | undefined;
  /** Whether the stream was open before: the next opening resumes the watchers. */
  private openedBefore = false;

  /** @internal */
  constructor(rpc: () => ServiceClient<typeof WatchDefinition>, { limits, maxResponseBytes, diagnostics, progressRequestsOrdered }: WatchHubContext) {
    this.progressRequestsOrdered = progressRequestsOrdered;
    this.limits = limits;
    this.maxResponseBytes = maxResponseBytes;
    this.diagnostics = diagnostics;
    this.stream = new ResilientStream({
      wanted: () => this.watchers.size > 0 && !this.closedWith,
      request: (item) => (item instanceof WatcherState ? createRequest(item) : item),
      // hasleader: the member ends the stream when it loses its leader, so the watchers move
      // to a member that still gets changes instead of silently waiting (clientv3 RequireLeader).
      open: (requests, signal) => rpc().watch(requests, { signal, metadata: Metadata({ hasleader: "true" }) }),
      opened: () => {
        this.pending = [];
        this.written = 0;
        this.progressAskedAt = [];
        this.lastHeard = Date.now();
        this.probeSentAt = undefined;
        this.checkSilence();
        for (const state of this.watchers.values()) this.sendCreate(state);
        if (this.progressAsked) this.askProgress();
        if (this.openedBefore) {
          const resumeRevisions = new Map([...this.watchers.values()].map((state) => [state.id, state.nextRevision]));
          this.diagnostics.publish("watchResumed", { resumeRevisions });
        }
        this.openedBefore = true;
      },
      received: (response) => {
        this.lastHeard = Date.now();
        this.route(response);
      },
      failed: (err) => {
        this.diagnostics.publish("watchBroken", { error: err });
        if (worthReconnecting(err)) return true;
        this.failAll(err);
        return false;
      },
    });
  }

  watch(key: Bytes, options: WatchOptions = {}): Watcher {
    if (this.closedWith) throw new ClientClosedError();
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "watch");
    const startRevision = options.startRevision === undefined ? 0n : toNonNegativeInt64(options.startRevision, "watch startRevision");
    const filters: WatchCreateRequest_FilterType[] = [];
    if (options.noPut) filters.push(WatchCreateRequest_FilterType.NOPUT);
    if (options.noDelete) filters.push(WatchCreateRequest_FilterType.NODELETE);
    const kept = rangeEnd === undefined && typeof key === "string" ? key : wireKey;
    const maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    if (!Number.isSafeInteger(maxBuffered) || maxBuffered < 1) throw new InvalidArgumentError("watch maxBuffered", `must be a positive integer, got ${String(maxBuffered)}`);
    const filterTypes = filters.length > 0 ? filters : undefined;
    const state = new WatcherState(this, this.nextId++, kept, rangeEnd, filterTypes, options.prevKv ?? false, options.progressNotify ?? false, startRevision, maxBuffered);
    const watcher = new Watcher(state);
    const signal = checkSignal(options.signal, "watch signal");
    if (signal?.aborted) {
      state.fail(new CallCanceledError("the watcher was canceled by its AbortSignal", { cause: signal.reason }));
      return watcher;
    }
    if (signal) state.attach(signal);
    this.watchers.set(state.id, state);
    this.sendCreate(state);
    this.stream.start();
    return watcher;
  }

  remove(state: WatcherState): void {
    if (!this.watchers.delete(state.id)) return;
    state.end();
    this.stream.send({ requestUnion: { $case: "cancelRequest", cancelRequest: { watchId: state.id } } });
    // No watcher left: close the stream rather than keep a connection busy for nothing.
    if (this.watchers.size === 0) this.stream.restart();
  }

  progressRequestsUsable(): Promise<boolean> {
    if (this.limits.streamRequests) return Promise.resolve(false);
    return this.progressRequestsOrdered?.() ?? Promise.resolve(true);
  }

  requestProgress(): void {
    const unsupported = this.limits.streamRequests;
    if (unsupported) throw new UnsupportedByTransportError(`watch progress requests are not possible here: ${unsupported}; use the progressNotify option`);
    this.progressAsked = true;
    this.askProgress();
  }

  /**
   * Probes a silent stream's member (see QUIET_MS) while the stream is wanted, over the wires that
   * can send on an open stream; etcd's gateway cannot, and its fetch has only the connection to go by.
   */
  private checkSilence(): void {
    if (this.silenceCheck || this.limits.streamRequests) return;
    this.silenceCheck = unref(
      setInterval(() => {
        if (this.watchers.size === 0 || this.closedWith) {
          clearInterval(this.silenceCheck);
          this.silenceCheck = undefined;
          return;
        }
        const now = Date.now();
        if (this.probeSentAt === undefined) {
          if (now - this.lastHeard >= QUIET_MS && this.askProgress()) this.probeSentAt = now;
        } else if (now - this.probeSentAt >= PROBE_ANSWER_MS) {
          this.probeSentAt = undefined;
          this.stream.abandon(`the watch stream's member did not answer a progress request within ${PROBE_ANSWER_MS} ms`);
        }
      }, PROBE_ANSWER_MS / 4),
    );
  }

  /** Ends every watcher with ClientClosedError and closes the stream. */
  close(): void {
    clearInterval(this.silenceCheck);
    this.silenceCheck = undefined;
    this.closedWith = new ClientClosedError();
    this.failAll(this.closedWith);
    this.stream.restart();
  }

  /** Ends every watcher with `error`; one made meanwhile (by an observer's error(), say) is not among them. */
  private failAll(error: unknown): void {
    const ended = [...this.watchers.values()];
    this.watchers.clear();
    for (const state of ended) state.fail(error);
  }

  private sendCreate(state: WatcherState): void {
    state.fragments = undefined;
    state.fragmentBytes = 0;
    state.active = false;
    if (this.stream.send(state)) {
      this.pending.push(state);
      state.createdAt = ++this.written;
    }
  }

  /** Sends a progress request on the open stream; false when none is open. */
  private askProgress(): boolean {
    if (!this.stream.send(PROGRESS_REQUEST)) return false;
    this.progressAskedAt.push(++this.written);
    return true;
  }

  private route(response: WatchResponsePb): void {
    const header = new ResponseHeader(response.header);
    const revision = header.revision;
    const answered = response.created ? this.pending.shift() : undefined;
    if (response.created && response.canceled) {
      // A create etcd refused (e.g. permission denied). Over gRPC it carries no watch ID: it is
      // the oldest pending one. (Over the gateway every watcher has a stream of its own, which
      // names it.)
      const refused = response.watchId === NO_WATCH_ID ? answered : this.watchers.get(Number(response.watchId));
      if (refused && this.watchers.delete(refused.id)) refused.fail(cancelError(response.cancelReason));
      return;
    }
    if (response.watchId === NO_WATCH_ID) {
      const askedAt = this.progressAskedAt.shift() ?? Number.POSITIVE_INFINITY;
      const probeOnly = this.probeSentAt !== undefined && !this.progressAsked;
      this.probeSentAt = undefined;
      // The answer to the client's own probe of a silent member: nobody asked for it.
      if (probeOnly) return;
      this.progressAsked = false;
      // The answer to a progress request: every watcher etcd has confirmed is up to date with
      // `revision`. One still being created (maybe replaying history from an older revision) is not.
      for (const state of this.watchers.values()) if (state.active && state.createdAt < askedAt) this.progress(state, header, revision);
      return;
    }
    const state = this.watchers.get(Number(response.watchId));
    if (!state) return; // cancelled meanwhile
    if (response.created) {
      if (state.nextRevision === 0n) state.nextRevision = revision + 1n;
      state.active = true;
      state.confirm();
    }
    if (response.canceled) {
      this.watchers.delete(state.id);
      if (response.compactRevision !== 0n) state.fail(new WatchCompactedError(response.compactRevision));
      else if (response.cancelReason) state.fail(cancelError(response.cancelReason));
      else state.end();
      return;
    }
    if (response.events.length === 0 && !response.fragment) {
      if (!response.created) this.progress(state, header, revision);
      return;
    }
    let events = response.events;
    if (response.fragment || state.fragments) {
      (state.fragments ??= []).push(...events);
      state.fragmentBytes += eventBytes(events);
      const limit = this.maxResponseBytes;
      if (limit >= 0 && state.fragmentBytes > limit) {
        // A server that never sends the last fragment must not grow this without end.
        const error = new MessageTooLargeError(`a watch response of over ${state.fragmentBytes} bytes in fragments, over the receive limit (maxCallRecvMsgSize ${limit})`, Status.RESOURCE_EXHAUSTED, undefined);
        state.fragments = undefined;
        this.watchers.delete(state.id);
        state.fail(error);
        this.stream.send({ requestUnion: { $case: "cancelRequest", cancelRequest: { watchId: state.id } } });
        return;
      }
      if (response.fragment) return;
      events = state.fragments;
      state.fragments = undefined;
      state.fragmentBytes = 0;
    }
    state.nextRevision = events[events.length - 1]!.kv!.modRevision + 1n;
    state.deliver({ header, events: events.map(toEvent), progress: false });
  }

  private progress(state: WatcherState, header: ResponseHeader, revision: bigint): void {
    if (state.fragments) return;
    if (revision + 1n > state.nextRevision) state.nextRevision = revision + 1n;
    state.deliver({ header, events: [], progress: true });
  }
}
