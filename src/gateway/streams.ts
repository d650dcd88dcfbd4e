import Long from "long";
import { ClientError, Status } from "nice-grpc-common";
import type { DeepPartial, WatchRequest, WatchResponse } from "../../gen/etcdserverpb/rpc.js";
import { UnsupportedByTransportError } from "../errors.js";
import { AsyncQueue } from "../queue.js";

/** Opens one streamed HTTP request whose body carries the request messages, one after another. */
export type OpenStream<Req, Res> = (requests: Req[], signal: AbortSignal) => AsyncIterable<Res>;

/**
 * How long request messages are gathered into one HTTP request. Each HTTP request costs far more
 * than a message, and a browser runs at most six at a time to a plain-HTTP origin.
 */
const BATCH_WINDOW_MS = 10;

/** Gathers what arrives within BATCH_WINDOW_MS (at most `max`) and hands it on together. */
class Batcher<T> {
  private batch: T[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly flush: (batch: T[]) => void,
    private readonly max = Infinity,
  ) {}

  push(item: T): void {
    this.batch.push(item);
    if (this.batch.length >= this.max) this.flushNow();
    else this.timer ??= setTimeout(() => this.flushNow(), BATCH_WINDOW_MS);
  }

  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.flush(batch);
  }
}

/**
 * The responses of many HTTP streams as one stream, in the order they arrive. The first failure
 * ends them all, as one broken gRPC stream would; so does the caller's signal.
 */
class Fan<Res> {
  readonly output = new AsyncQueue<Res>();
  private readonly streams = new Map<string, AbortController>();
  private inputDone = false;

  /** Ends the caller's hold on this fan once it is done. */
  private readonly detach = new AbortController();

  constructor(private readonly signal: AbortSignal | undefined) {
    signal?.addEventListener("abort", () => this.fail(signal.reason), { once: true, signal: this.detach.signal });
  }

  /**
   * Adds a stream under `key`. `openEnded` streams (watches) only end by `cancel`: their ending
   * otherwise means the server went away. `rewrite` adjusts each response before it is passed on.
   */
  add(key: string, open: (signal: AbortSignal) => AsyncIterable<Res>, openEnded: boolean, path: string, rewrite: (response: Res) => Res = (r) => r): void {
    const own = new AbortController();
    this.streams.set(key, own);
    const signal = this.signal ? AbortSignal.any([this.signal, own.signal]) : own.signal;
    void (async () => {
      try {
        for await (const response of open(signal)) this.output.push(rewrite(response));
        if (openEnded && !own.signal.aborted) throw new ClientError(path, Status.UNAVAILABLE, "the gateway ended the stream");
      } catch (err) {
        if (!own.signal.aborted) this.fail(err);
      } finally {
        if (this.streams.get(key) === own) this.streams.delete(key);
        this.endIfDone();
      }
    })();
  }

  /** Ends the stream under `key`, passing on nothing more from it. */
  cancel(key: string): void {
    this.streams.get(key)?.abort();
    this.streams.delete(key);
  }

  /** No more streams will be added; the output ends once those open have ended. */
  endInput(): void {
    this.inputDone = true;
    this.endIfDone();
  }

  fail(error: unknown): void {
    this.output.fail(error);
    for (const stream of this.streams.values()) stream.abort();
    this.streams.clear();
  }

  private endIfDone(): void {
    if (this.inputDone && this.streams.size === 0) this.output.end();
  }

  /**
   * Feeds requests to `route` until they end (then `ended` sends what it still holds), and
   * yields what the streams answered.
   */
  async *run<Req>(requests: AsyncIterable<Req>, route: (request: Req) => void, ended: () => void): AsyncGenerator<Res, void, undefined> {
    void (async () => {
      try {
        for await (const request of requests) route(request);
        ended();
        this.endInput();
      } catch (err) {
        this.fail(err);
      }
    })();
    try {
      yield* this.output.drain();
    } finally {
      this.fail(new Error("stream closed"));
      this.detach.abort();
    }
  }
}

/**
 * A bidirectional stream over a gateway that reads a request body to its end before it answers:
 * the request messages of each short while go out as one HTTP request, and the responses of all
 * come out as one stream. Lease keep-alives work this way: a body of renewals, one answer each.
 */
export function streamInBatches<Req, Res>(requests: AsyncIterable<Req>, open: OpenStream<Req, Res>, signal: AbortSignal | undefined, path: string): AsyncIterable<Res> {
  const fan = new Fan<Res>(signal);
  let next = 0;
  // Each renewal is answered at once, so a thousand make a short request.
  const batcher = new Batcher<Req>((batch) => fan.add(String(next++), (s) => open(batch, s), false, path), 1000);
  return fan.run(requests, (request) => batcher.push(request), () => batcher.flushNow());
}

/**
 * A Watch stream over the gateway. The creates of each short while go out as one HTTP stream,
 * on which etcd answers them in order: a create it refuses comes back with watch ID -1 and is
 * given the ID of the create it answers. A cancel ends its HTTP stream once no other watcher of
 * that stream is left; until then the watcher's events still come and are dropped above (the
 * WatchHub moves its watchers to one fresh stream soon after such changes).
 */
export function watchOverGateway(
  requests: AsyncIterable<DeepPartial<WatchRequest>>,
  open: OpenStream<DeepPartial<WatchRequest>, WatchResponse>,
  signal: AbortSignal | undefined,
  path: string,
): AsyncIterable<WatchResponse> {
  const fan = new Fan<WatchResponse>(signal);
  /** The watch IDs still wanted on each HTTP stream, by stream key; the stream of each watch ID. */
  const watchers = new Map<string, Set<string>>();
  const streamOf = new Map<string, string>();
  let next = 0;
  const batcher = new Batcher<DeepPartial<WatchRequest>>((batch) => {
    const key = String(next++);
    const ids = batch.map((request) => Long.fromValue(request.requestUnion?.$case === "createRequest" ? (request.requestUnion.createRequest?.watchId ?? 0) : 0));
    watchers.set(key, new Set(ids.map(String)));
    for (const id of ids) streamOf.set(id.toString(), key);
    let answered = 0;
    const named = (response: WatchResponse) => {
      if (!response.created) return response;
      const id = ids[answered++];
      return response.watchId.isNegative() && id ? { ...response, watchId: id } : response;
    };
    fan.add(key, (s) => open(batch, s), true, path, named);
  });
  const route = (request: DeepPartial<WatchRequest>) => {
    const union = request.requestUnion;
    switch (union?.$case) {
      case "createRequest":
        batcher.push(request);
        break;
      case "cancelRequest": {
        const id = Long.fromValue(union.cancelRequest?.watchId ?? 0).toString();
        const key = streamOf.get(id);
        streamOf.delete(id);
        const left = key === undefined ? undefined : watchers.get(key);
        left?.delete(id);
        if (key !== undefined && left?.size === 0) {
          watchers.delete(key);
          fan.cancel(key);
        }
        break;
      }
      default:
        throw new UnsupportedByTransportError(`${path}: etcd's HTTP gateway cannot take a ${union?.$case ?? "empty"} request on an open watch stream`);
    }
  };
  return fan.run(requests, route, () => batcher.flushNow());
}
