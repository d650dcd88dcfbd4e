import { Status } from "nice-grpc-common";
import { WireFailure } from "../../core/wire-failure.js";
import type { DeepPartial, WatchRequest, WatchResponse } from "../../../gen/etcdserverpb/rpc.js";
import { UnsupportedByTransportError } from "../../core/errors.js";
import { AsyncQueue } from "../../core/queue.js";

/** Opens one streamed HTTP request for one request message. */
export type OpenStream<Req, Res> = (request: Req, signal: AbortSignal) => AsyncIterable<Res>;

interface StreamOptions<Res> {
  /** The gRPC path, for errors. */
  path: string;
  /** Streams (watches) that only end by `cancel`: their ending otherwise means the server went away. */
  openEnded?: boolean;
  /** Adjusts each response before it is passed on. */
  rewrite?: (response: Res) => Res;
  /** Called when the stream has ended well, before the fan checks whether it is done. */
  ended?: () => void;
}

/**
 * The responses of many HTTP streams as one stream, in the order they arrive. The first failure
 * ends them all, as one broken gRPC stream would; so does the caller's signal.
 */
class Fan<Res> {
  readonly output = new AsyncQueue<Res>();
  private readonly streams = new Map<string, AbortController>();
  private inputDone = false;
  private failed = false;

  /** Ends the caller's hold on this fan once it is done. */
  private readonly detach = new AbortController();

  /** `holding` says whether requests wait to be sent, which keeps the output open once input ends. */
  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly holding: () => boolean = () => false,
  ) {
    signal?.addEventListener("abort", () => this.fail(signal.reason), { once: true, signal: this.detach.signal });
  }

  /** Adds a stream under `key`; see StreamOptions. */
  add(key: string, open: (signal: AbortSignal) => AsyncIterable<Res>, options: StreamOptions<Res>): void {
    if (this.failed) return;
    const { path, openEnded = false, rewrite = (r: Res) => r, ended } = options;
    const own = new AbortController();
    this.streams.set(key, own);
    const signal = this.signal ? AbortSignal.any([this.signal, own.signal]) : own.signal;
    void (async () => {
      try {
        for await (const response of open(signal)) this.output.push(rewrite(response));
        if (openEnded && !own.signal.aborted) throw new WireFailure(path, Status.UNAVAILABLE, "the gateway ended the stream", "sent-and-lost");
      } catch (err) {
        if (!own.signal.aborted) this.fail(err);
      } finally {
        if (this.streams.get(key) === own) this.streams.delete(key);
        if (!this.failed) ended?.();
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
    this.failed = true;
    this.output.fail(error);
    for (const stream of this.streams.values()) stream.abort();
    this.streams.clear();
  }

  private endIfDone(): void {
    if (this.inputDone && this.streams.size === 0 && !this.holding()) this.output.end();
  }

  /** Feeds requests to `route` until they end, then yields what the streams answered. */
  async *run<Req>(requests: AsyncIterable<Req>, route: (request: Req) => void, finished?: () => void): AsyncGenerator<Res, void, undefined> {
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
      finished?.();
    }
  }
}

/** Opens one streamed HTTP request whose body is `body`. */
export type OpenBody<Res> = (body: string, signal: AbortSignal) => AsyncIterable<Res>;

/** How request messages share HTTP requests on a stream that batches them (see batchedRequests). */
export interface Batching {
  /** HTTP requests in flight at once; messages that come meanwhile wait for one of them to end. */
  inFlight: number;
  /** Bytes of JSON in one body at most, unless one message alone is larger. */
  bodyBytes: number;
  /**
   * Least time between the starts of two HTTP requests, unless more messages wait than one body
   * holds: messages that come sooner wait and go together. The first after a pause goes at once.
   */
  spacingMs: number;
}

/**
 * A bidirectional stream over a gateway that reads a request body to its end before it answers,
 * for a method whose server answers each request once, in order, and ends the stream when the
 * requests end (LeaseKeepAlive). The gateway passes on each JSON object of a body as a message,
 * so the messages that queue up while `inFlight` HTTP requests are out go together in the next.
 *
 * Over HTTP/1.1, Go's server throws away the part of a body the gateway has not read when it
 * starts to answer, and the gateway reads the first 512 bytes at once, then more as it decodes:
 * a longer body can lose its tail. The server then ends the stream after answering what it got,
 * so the messages left unanswered go again in the next body.
 */
export function batchedRequests<Req, Res>(
  requests: AsyncIterable<Req>,
  encode: (request: Req) => string,
  open: OpenBody<Res>,
  batching: Batching,
  signal: AbortSignal | undefined,
  path: string,
): AsyncIterable<Res> {
  const waiting: string[] = [];
  let inFlight = 0;
  let next = 0;
  let lastStart = -Infinity;
  let spacing: ReturnType<typeof setTimeout> | undefined;
  const fan = new Fan<Res>(signal, () => waiting.length > 0);
  /** How many of the waiting messages fit in one body. */
  const batchLength = (): number => {
    let count = 1;
    let bytes = waiting[0]!.length;
    while (count < waiting.length && bytes + 1 + waiting[count]!.length <= batching.bodyBytes) bytes += 1 + waiting[count++]!.length;
    return count;
  };
  const dispatch = (): void => {
    while (inFlight < batching.inFlight && waiting.length > 0) {
      const count = batchLength();
      // A full body goes at once: spacing only gathers messages, it never holds back a full one.
      const wait = count < waiting.length ? 0 : lastStart + batching.spacingMs - performance.now();
      if (wait > 0) {
        // Not unref'd: a caller may be awaiting one of these messages' answers.
        spacing ??= setTimeout(() => {
          spacing = undefined;
          dispatch();
        }, wait);
        return;
      }
      clearTimeout(spacing);
      spacing = undefined;
      lastStart = performance.now();
      const batch = waiting.splice(0, count);
      let answered = 0;
      inFlight++;
      fan.add(String(next++), (s) => open(batch.join("\n"), s), {
        path,
        rewrite: (response) => {
          answered++;
          return response;
        },
        ended: () => {
          inFlight--;
          if (answered === 0) return fan.fail(new WireFailure(path, Status.UNAVAILABLE, "the gateway ended a stream without answering it", "sent-and-lost"));
          waiting.unshift(...batch.slice(answered));
          dispatch();
        },
      });
    }
  };
  return fan.run(
    requests,
    (request) => {
      waiting.push(encode(request));
      dispatch();
    },
    () => clearTimeout(spacing),
  );
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
        const id = BigInt(union.createRequest?.watchId ?? 0);
        const named = (response: WatchResponse) => (response.watchId < 0n ? { ...response, watchId: id } : response);
        fan.add(id.toString(), (s) => open(request, s), { path, openEnded: true, rewrite: named });
        break;
      }
      case "cancelRequest":
        fan.cancel(BigInt(union.cancelRequest?.watchId ?? 0).toString());
        break;
      default:
        throw new UnsupportedByTransportError(`${path}: etcd's HTTP gateway cannot take a ${union?.$case ?? "empty"} request on an open watch stream`);
    }
  });
}
