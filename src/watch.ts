import Long from "long";
import { Metadata, Status } from "nice-grpc-common";
import {
  type DeepPartial,
  type WatchDefinition,
  type WatchRequest,
  type WatchResponse as WatchResponsePb,
  WatchCreateRequest_FilterType,
} from "../gen/etcdserverpb/rpc.js";
import { type Event as EventPb, Event_EventType } from "../gen/mvccpb/kv.js";
import type { Bytes } from "./bytes.js";
import {
  CallCanceledError,
  ClientClosedError,
  EndpointError,
  ErrCompacted,
  EtcdServerError,
  serverErrorFor,
  TransportError,
  UnsupportedByTransportError,
} from "./errors.js";
import { fromLong, type Int64, toNonNegativeLong } from "./int64.js";
import { KeyValue, type KeySelection, ResponseHeader, selectKeys } from "./kv.js";
import { AsyncQueue } from "./queue.js";
import { ResilientStream } from "./resilient-stream.js";
import type { ServiceClient, WireLimits } from "./transport.js";

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
}

export interface WatchEvent {
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
  header: ResponseHeader;
  events: WatchEvent[];
  /** No events: every change up to `header.revision` has been delivered. */
  progress: boolean;
}

/** A watcher's start revision (or its resume point) was compacted away: an ErrCompacted with the oldest revision still kept. */
export class WatchCompactedError extends ErrCompacted {
  override name = "ErrCompacted";
  constructor(readonly compactRevision: bigint) {
    super("etcdserver: mvcc: required revision has been compacted", Status.OUT_OF_RANGE, undefined);
  }
}

const NO_WATCH_ID = Long.NEG_ONE;

/** Failures after which the stream is opened again (on another member if need be). */
function worthReconnecting(err: unknown): boolean {
  if (err instanceof EndpointError) return true;
  // Internal covers a stream reset by the server or a proxy, which clientv3 also reconnects after.
  if (err instanceof TransportError || err instanceof EtcdServerError) return err.code === Status.UNAVAILABLE || err.code === Status.INTERNAL;
  return false;
}

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

function toEvent(pb: EventPb): WatchEvent {
  return {
    type: pb.type === Event_EventType.DELETE ? "delete" : "put",
    kv: new KeyValue(pb.kv!),
    prevKv: pb.prevKv ? new KeyValue(pb.prevKv) : undefined,
  };
}

interface WatcherState {
  id: Long;
  key: Uint8Array;
  rangeEnd: Uint8Array | undefined;
  filters: WatchCreateRequest_FilterType[];
  prevKv: boolean;
  progressNotify: boolean;
  /** The revision to (re)start from: after the last event delivered; 0 until etcd confirmed. */
  nextRevision: bigint;
  fragments: EventPb[];
  queue: AsyncQueue<WatchResponse>;
  /** Whether etcd confirmed the watcher on the current stream (progress reports cover only those). */
  active: boolean;
  confirm: () => void;
  /** Fails the watcher: its iteration throws `error`, `ready` rejects with it. */
  fail: (error: unknown) => void;
  /** Removes the watcher's AbortSignal listener. */
  detach: () => void;
}

/** A stream of changes to a key or range; iterate it with `for await`, leave the loop to end it. */
export class Watcher implements AsyncIterable<WatchResponse> {
  /** Resolves once etcd has confirmed the watcher. */
  readonly ready: Promise<void>;

  /** @internal */
  constructor(
    private readonly hub: WatchHub,
    private readonly state: WatcherState,
    ready: Promise<void>,
  ) {
    this.ready = ready;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchResponse, void, undefined> {
    try {
      for (;;) {
        const step = await this.state.queue.next();
        if (step.done) return;
        yield step.value;
      }
    } finally {
      this.cancel();
    }
  }

  /** Stops the watcher; iteration ends after what was already received. */
  cancel(): void {
    this.hub.remove(this.state);
  }

  /**
   * Asks etcd for a progress notification for every watcher of this client. Over etcd's HTTP
   * gateway it throws UnsupportedByTransportError: use `progressNotify` there.
   */
  requestProgress(): void {
    this.hub.requestProgress();
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
  private readonly watchers = new Map<string, WatcherState>();
  private nextId = 1;
  private readonly stream: ResilientStream<DeepPartial<WatchRequest>, WatchResponsePb>;
  /** Creates sent on the current stream and not yet answered, oldest first: etcd answers them in order. */
  private pending: WatcherState[] = [];
  private closedWith: Error | undefined;

  /** @internal */
  constructor(
    rpc: () => ServiceClient<typeof WatchDefinition>,
    private readonly limits: WireLimits,
  ) {
    this.stream = new ResilientStream({
      wanted: () => this.watchers.size > 0 && !this.closedWith,
      // hasleader: the member ends the stream when it loses its leader, so the watchers move
      // to a member that still gets changes instead of silently waiting (clientv3 RequireLeader).
      open: (requests, signal) => rpc().watch(requests, { signal, metadata: Metadata({ hasleader: "true" }) }),
      opened: () => {
        this.pending = [];
        for (const state of this.watchers.values()) this.sendCreate(state);
      },
      received: (response) => this.route(response),
      failed: (err) => {
        if (worthReconnecting(err)) return true;
        for (const state of this.watchers.values()) state.fail(err);
        this.watchers.clear();
        return false;
      },
    });
  }

  watch(key: Bytes, options: WatchOptions = {}): Watcher {
    if (this.closedWith) throw new ClientClosedError();
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "watch");
    const startRevision = options.startRevision === undefined ? 0n : fromLong(toNonNegativeLong(options.startRevision, "watch startRevision"));
    const filters = [...(options.noPut ? [WatchCreateRequest_FilterType.NOPUT] : []), ...(options.noDelete ? [WatchCreateRequest_FilterType.NODELETE] : [])];
    let confirm!: () => void;
    let refuse!: (error: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      confirm = resolve;
      refuse = reject;
    });
    // Failures reach the iteration; `ready` may well go unobserved.
    ready.catch(() => undefined);
    const queue = new AsyncQueue<WatchResponse>();
    const state: WatcherState = {
      id: Long.fromNumber(this.nextId++),
      key: wireKey,
      rangeEnd,
      filters,
      prevKv: options.prevKv ?? false,
      progressNotify: options.progressNotify ?? false,
      nextRevision: startRevision,
      fragments: [],
      queue,
      active: false,
      confirm,
      fail: (error) => {
        queue.fail(error);
        refuse(error);
      },
      detach: () => undefined,
    };
    const watcher = new Watcher(this, state, ready);
    const { signal } = options;
    if (signal) {
      const onAbort = () => {
        state.fail(new CallCanceledError("the watcher was canceled by its AbortSignal", { cause: signal.reason }));
        this.remove(state);
      };
      if (signal.aborted) {
        onAbort();
        return watcher;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      state.detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.watchers.set(state.id.toString(), state);
    this.sendCreate(state);
    this.stream.start();
    return watcher;
  }

  remove(state: WatcherState): void {
    state.detach();
    if (!this.watchers.delete(state.id.toString())) return;
    state.queue.end();
    this.stream.send({ requestUnion: { $case: "cancelRequest", cancelRequest: { watchId: state.id } } });
    // No watcher left: close the stream rather than keep a connection busy for nothing.
    if (this.watchers.size === 0) this.stream.restart();
  }

  requestProgress(): void {
    const unsupported = this.limits.streamRequests;
    if (unsupported) throw new UnsupportedByTransportError(`watch progress requests are not possible here: ${unsupported}; use the progressNotify option`);
    this.stream.send({ requestUnion: { $case: "progressRequest", progressRequest: {} } });
  }

  /** Ends every watcher with ClientClosedError and closes the stream. */
  close(): void {
    this.closedWith = new ClientClosedError();
    for (const state of this.watchers.values()) {
      state.detach();
      state.fail(this.closedWith);
    }
    this.watchers.clear();
    this.stream.restart();
  }

  private sendCreate(state: WatcherState): void {
    state.fragments = [];
    state.active = false;
    const sent = this.stream.send({
      requestUnion: {
        $case: "createRequest",
        createRequest: {
          key: state.key,
          rangeEnd: state.rangeEnd,
          startRevision: Long.fromString(state.nextRevision.toString()),
          progressNotify: state.progressNotify,
          filters: state.filters,
          prevKv: state.prevKv,
          watchId: state.id,
          fragment: true,
        },
      },
    });
    if (sent) this.pending.push(state);
  }

  private route(response: WatchResponsePb): void {
    const header = new ResponseHeader(response.header);
    const revision = header.revision;
    const answered = response.created ? this.pending.shift() : undefined;
    if (response.created && response.canceled) {
      // A create etcd refused (e.g. permission denied). Over gRPC it carries no watch ID: it is
      // the oldest pending one. (Over the gateway every watcher has a stream of its own, which
      // names it.)
      const refused = response.watchId.equals(NO_WATCH_ID) ? answered : this.watchers.get(response.watchId.toString());
      if (refused && this.watchers.delete(refused.id.toString())) {
        refused.detach();
        refused.fail(cancelError(response.cancelReason));
      }
      return;
    }
    if (response.watchId.equals(NO_WATCH_ID)) {
      // The answer to a progress request: every watcher etcd has confirmed is up to date with
      // `revision`. One still being created (maybe replaying history from an older revision) is not.
      for (const state of this.watchers.values()) if (state.active) this.progress(state, header, revision);
      return;
    }
    const state = this.watchers.get(response.watchId.toString());
    if (!state) return; // cancelled meanwhile
    if (response.created) {
      if (state.nextRevision === 0n) state.nextRevision = revision + 1n;
      state.active = true;
      state.confirm();
    }
    if (response.canceled) {
      this.watchers.delete(state.id.toString());
      state.detach();
      if (!response.compactRevision.isZero()) state.fail(new WatchCompactedError(fromLong(response.compactRevision)));
      else if (response.cancelReason) state.fail(cancelError(response.cancelReason));
      else state.queue.end();
      return;
    }
    if (response.events.length === 0 && !response.fragment) {
      if (!response.created) this.progress(state, header, revision);
      return;
    }
    state.fragments.push(...response.events);
    if (response.fragment) return;
    const events = state.fragments;
    state.fragments = [];
    state.nextRevision = fromLong(events[events.length - 1]!.kv!.modRevision) + 1n;
    state.queue.push({ header, events: events.map(toEvent), progress: false });
  }

  private progress(state: WatcherState, header: ResponseHeader, revision: bigint): void {
    if (state.fragments.length > 0) return;
    if (revision + 1n > state.nextRevision) state.nextRevision = revision + 1n;
    state.queue.push({ header, events: [], progress: true });
  }
}
