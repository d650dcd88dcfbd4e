import Long from "long";
import { ClientError, Status } from "nice-grpc-common";
import type { DeepPartial, WatchRequest, WatchResponse } from "../../gen/etcdserverpb/rpc.js";
import { UnsupportedByTransportError } from "../errors.js";
import { AsyncQueue } from "../queue.js";

/** Opens one streamed HTTP request for one request message. */
export type OpenStream<Req, Res> = (request: Req, signal: AbortSignal) => AsyncIterable<Res>;

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

  /** Feeds requests to `route` until they end, then yields what the streams answered. */
  async *run<Req>(requests: AsyncIterable<Req>, route: (request: Req) => void): AsyncGenerator<Res, void, undefined> {
    void (async () => {
      try {
        for await (const request of requests) route(request);
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
 * A bidirectional stream over a gateway that takes one request per HTTP request (it reads the
 * body to its end before answering): each request message gets an HTTP request of its own, and
 * their responses come out as one stream. Lease keep-alives work this way: one renewal, one answer.
 */
export function streamPerRequest<Req, Res>(requests: AsyncIterable<Req>, open: OpenStream<Req, Res>, signal: AbortSignal | undefined, path: string): AsyncIterable<Res> {
  const fan = new Fan<Res>(signal);
  let next = 0;
  return fan.run(requests, (request) => fan.add(String(next++), (s) => open(request, s), false, path));
}

/**
 * A Watch stream over the gateway: each watcher is an HTTP stream of its own, keyed by the watch
 * ID the client chose, and a cancel request ends that HTTP stream. A create etcd refuses comes
 * back with watch ID -1; it is given its watcher's ID, since no other create shares its stream.
 */
export function watchOverGateway(
  requests: AsyncIterable<DeepPartial<WatchRequest>>,
  open: OpenStream<DeepPartial<WatchRequest>, WatchResponse>,
  signal: AbortSignal | undefined,
  path: string,
): AsyncIterable<WatchResponse> {
  const fan = new Fan<WatchResponse>(signal);
  return fan.run(requests, (request) => {
    const union = request.requestUnion;
    switch (union?.$case) {
      case "createRequest": {
        const id = Long.fromValue(union.createRequest?.watchId ?? 0);
        const named = (response: WatchResponse) => (response.watchId.isNegative() ? { ...response, watchId: id } : response);
        fan.add(id.toString(), (s) => open(request, s), true, path, named);
        break;
      }
      case "cancelRequest":
        fan.cancel(Long.fromValue(union.cancelRequest?.watchId ?? 0).toString());
        break;
      default:
        throw new UnsupportedByTransportError(`${path}: etcd's HTTP gateway cannot take a ${union?.$case ?? "empty"} request on an open watch stream`);
    }
  });
}
