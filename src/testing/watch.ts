import { type DeepPartial, type ResponseHeader, type WatchCreateRequest, WatchCreateRequest_FilterType, type WatchRequest, WatchResponse } from "../../gen/etcdserverpb/rpc.js";
import { Event, Event_EventType } from "../../gen/mvccpb/kv.js";
import { ErrCompacted } from "../core/errors.js";
import type { Clock } from "./clock.js";
import { orderedKey } from "../core/bytes.js";
import { inRange, type KeyRange, keyRange, type Mvcc, type RevisionEvents } from "./mvcc.js";
import { varintLength } from "./varint.js";

/** What a watch stream needs of the server. */
export interface WatchContext {
  store: Mvcc;
  clock: Clock;
  header(revision: bigint): ResponseHeader;
  /** etcd's --watch-progress-notify-interval, in ms. */
  progressIntervalMs: number;
  /** A response of this many bytes or more is split into fragments, for watchers that allow it. */
  fragmentBytes: number;
}

/** The watch ID of a refused create and of a progress notification for every watcher of a stream. */
const NO_WATCH_ID = -1n;
/** The most revisions etcd puts in one response to a watcher catching up on history. */
const MAX_REVISIONS_PER_RESPONSE = 1000;

const EMPTY_RANGE = "mvcc: watcher range is empty";
const DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";

function keysOf(events: readonly Event[]): string[] {
  return events.map((event) => orderedKey(event.kv!.key));
}

/** One watcher of a stream. */
class Watcher {
  /** The first revision it has not been sent yet. */
  nextRevision: bigint;
  /** No events sent since the last progress tick: the next tick sends it a progress notification. */
  idle = true;
  readonly noPut: boolean;
  readonly noDelete: boolean;

  constructor(
    readonly id: bigint,
    readonly range: KeyRange,
    /** The start revision asked for; 0n for "from now". */
    readonly startRevision: bigint,
    readonly request: WatchCreateRequest,
    current: bigint,
  ) {
    // A watcher from now or from a future revision is synced at once; one from the past catches up.
    const synced = startRevision === 0n || startRevision > current;
    this.nextRevision = synced && startRevision <= current + 1n ? current + 1n : startRevision;
    this.noPut = request.filters.includes(WatchCreateRequest_FilterType.NOPUT);
    this.noDelete = request.filters.includes(WatchCreateRequest_FilterType.NODELETE);
  }

  /** Its events among `events` (whose keys are `keys`), revisions it was sent already left out. */
  matching(events: readonly Event[], keys: readonly string[]): Event[] {
    return events.filter((event, i) => event.kv!.modRevision >= this.nextRevision && inRange(this.range, keys[i]!));
  }

  /** Whether etcd's filters let the event through. */
  wants(event: Event): boolean {
    return event.type === Event_EventType.PUT ? !this.noPut : !this.noDelete;
  }
}

/**
 * The server side of one Watch stream, as etcd's: watchers created, cancelled and told of each
 * revision that touches their keys; history replayed to those that start in the past; progress
 * on request and on the progress-notify interval; responses over the size limit in fragments.
 */
export class WatchStream {
  private readonly watchers = new Map<bigint, Watcher>();
  /** The watch ID the stream gives the next watcher that does not choose its own. */
  private nextId = 0n;
  private stopTicker: () => void;

  constructor(
    private readonly context: WatchContext,
    private readonly send: (response: DeepPartial<WatchResponse>) => void,
  ) {
    this.stopTicker = this.tick();
  }

  receive(request: WatchRequest): void {
    const union = request.requestUnion;
    switch (union?.$case) {
      case "createRequest":
        return this.create(union.createRequest);
      case "cancelRequest": {
        const id = union.cancelRequest.watchId;
        if (this.watchers.delete(id)) this.send({ header: this.header(), watchId: id, canceled: true });
        return;
      }
      case "progressRequest":
        return this.progress([...this.watchers.values()], NO_WATCH_ID);
    }
  }

  /** Tells the watchers of the keys a revision changed. */
  notify({ revision, events }: RevisionEvents): void {
    const keys = keysOf(events);
    for (const watcher of this.watchers.values()) {
      const matching = watcher.matching(events, keys);
      if (matching.length === 0) continue;
      watcher.nextRevision = revision + 1n;
      this.deliver(watcher, matching, revision);
    }
  }

  close(): void {
    this.stopTicker();
    this.watchers.clear();
  }

  private header(revision = this.context.store.revision): ResponseHeader {
    return this.context.header(revision);
  }

  private create(request: WatchCreateRequest): void {
    const { store } = this.context;
    // etcd reads an empty key as "\0", the smallest key.
    const key = request.key.length === 0 ? new Uint8Array([0]) : request.key;
    if (request.startRevision < 0n) return this.refuse(ErrCompacted.serverMessage);
    const range = keyRange(key, request.rangeEnd);
    if (range.end !== undefined && range.end !== "" && range.start >= range.end) return this.refuse(EMPTY_RANGE);
    let id = request.watchId;
    if (id === 0n) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      return this.refuse(DUPLICATE_ID);
    }
    const watcher = new Watcher(id, range, request.startRevision, request, store.revision);
    this.watchers.set(id, watcher);
    this.send({ header: this.header(), watchId: id, created: true });
    if (watcher.nextRevision <= store.revision) this.catchUp(watcher);
  }

  /** A create refused: etcd answers it with a watch ID of -1, created and cancelled at once. */
  private refuse(reason: string): void {
    this.send({ header: this.header(), watchId: NO_WATCH_ID, created: true, canceled: true, cancelReason: reason });
  }

  /**
   * Sends a watcher that starts in the past what it missed: at most 1000 revisions a response,
   * each with the current revision, as etcd's unsynced watchers get them. One whose start was
   * compacted away is cancelled with the compaction's revision instead.
   */
  private catchUp(watcher: Watcher): void {
    const { store } = this.context;
    if (watcher.nextRevision < store.compacted) {
      this.watchers.delete(watcher.id);
      this.send({ header: this.header(0n), watchId: watcher.id, canceled: true, compactRevision: store.compacted });
      return;
    }
    const current = store.revision;
    let batch: Event[] = [];
    let revisions = 0;
    for (const { events } of store.since(watcher.nextRevision)) {
      const matching = watcher.matching(events, keysOf(events));
      if (matching.length === 0) continue;
      if (revisions === MAX_REVISIONS_PER_RESPONSE) {
        this.deliver(watcher, batch, current);
        batch = [];
        revisions = 0;
      }
      batch.push(...matching);
      revisions++;
    }
    if (batch.length > 0) this.deliver(watcher, batch, current);
    watcher.nextRevision = current + 1n;
  }

  /** Sends a watcher its events that pass its filters, with their previous values if it asked. */
  private deliver(watcher: Watcher, events: Event[], revision: bigint): void {
    const wanted = events.filter((event) => watcher.wants(event)).map((event) => this.withPrevious(watcher, event));
    if (wanted.length === 0) return;
    watcher.idle = false;
    const response = { header: this.header(revision), watchId: watcher.id, events: wanted };
    if (watcher.request.fragment) this.sendFragments(response);
    else this.send(response);
  }

  /**
   * The event to send: with the key as it was before, when the watcher asked for it, the event
   * did not create the key, and compaction left that revision.
   */
  private withPrevious(watcher: Watcher, event: Event): Event {
    const kv = event.kv!;
    const { store } = this.context;
    const created = event.type === Event_EventType.PUT && kv.createRevision === kv.modRevision;
    const before = kv.modRevision - 1n;
    const prevKv = watcher.request.prevKv && !created && before >= store.compacted ? store.get(orderedKey(kv.key), before) : undefined;
    return { type: event.type, kv, prevKv };
  }

  /**
   * Sends a response whole if it is under the fragment size or holds one event; else in parts
   * of as many events as stay under the size (one at least), all but the last marked `fragment`.
   */
  private sendFragments(response: { header: ResponseHeader; watchId: bigint; events: Event[] }): void {
    const limit = this.context.fragmentBytes;
    const { events } = response;
    const bytesWithout = (fragment: boolean) => WatchResponse.encode(WatchResponse.fromPartial({ ...response, events: [], fragment })).finish().length;
    // Each event adds its bytes, its field tag and their length.
    const eventBytes = events.map((event) => {
      const size = Event.encode(event).finish().length;
      return 1 + varintLength(size) + size;
    });
    if (bytesWithout(false) + eventBytes.reduce((a, b) => a + b, 0) < limit || events.length < 2) return this.send(response);
    const base = bytesWithout(true);
    let next = 0;
    while (next < events.length) {
      let size = base + eventBytes[next]!;
      let end = next + 1;
      while (end < events.length && size + eventBytes[end]! < limit) size += eventBytes[end++]!;
      this.send({ ...response, events: events.slice(next, end), fragment: end < events.length });
      next = end;
    }
  }

  /**
   * A progress notification with `watchId` for `watchers`, sent only if every one of them has
   * been sent everything up to the current revision (a watcher of a future revision has not).
   */
  private progress(watchers: Watcher[], watchId: bigint): void {
    const current = this.context.store.revision;
    if (watchers.length === 0 || watchers.some((watcher) => current < watcher.startRevision)) return;
    this.send({ header: this.header(current), watchId });
  }

  /**
   * Every progress-notify interval, a progress notification to each watcher that asked for them
   * and was sent no events since the last tick. etcd adds a random tenth to the interval so that
   * watchers created together do not all tick together; here it is exact.
   */
  private tick(): () => void {
    return this.context.clock.setTimer(() => {
      for (const watcher of this.watchers.values()) {
        if (!watcher.request.progressNotify) continue;
        if (watcher.idle) this.progress([watcher], watcher.id);
        watcher.idle = true;
      }
      this.stopTicker = this.tick();
    }, this.context.progressIntervalMs);
  }
}
