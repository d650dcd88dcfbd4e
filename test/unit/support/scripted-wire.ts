/**
 * A Wire that plays back what a test scripts: unary answers and failures per method, and streams
 * whose responses, failures and ends the test sends while it reads the requests the client wrote.
 * Everything above the wire (the client, the API areas, the middleware chain, failover) runs
 * unchanged, so the logic there is tested in milliseconds, without etcd. Messages go through the
 * generated binary codecs both ways, as on a real wire, so the API sees what a wire hands it.
 */
import type { CallOptions } from "nice-grpc-common";
import { Status } from "nice-grpc-common";
import { BaseClient } from "../../../src/client/base-client.js";
import { AsyncQueue } from "../../../src/core/queue.js";
import type { ClientConfig, Endpoint } from "../../../src/core/config.js";
import type { DiagnosticsChannelModule } from "../../../src/core/diagnostics.js";
import { type Delivery, WireFailure } from "../../../src/core/wire-failure.js";
import { binaryCodec } from "../../../src/wire/binary-codec.js";
import { type ConnectOutcome, type EndpointSlot, EndpointRotation } from "../../../src/wire/endpoints.js";
import { abortError, sendRequests, StreamCall } from "../../../src/wire/stream-call.js";
import type { Wire, WireLimits, WireMethod } from "../../../src/wire/wire.js";

/** One attempt the client sent, as the scripted wire saw it. */
export interface SentCall {
  endpoint: string;
  path: string;
  /** The request, decoded from the bytes a wire would have sent (unary and server-streaming calls). */
  request: unknown;
  options: CallOptions;
}

/** What a unary call is answered with: a response message (partial), at once or as a promise, or a thrown WireFailure. */
export type UnaryScript = (call: SentCall) => unknown;

/** A streaming call in flight, driven by the test. */
export class ScriptedStream {
  private readonly requests = new AsyncQueue<unknown>();
  cancelled = false;
  paused = false;

  constructor(
    readonly call: SentCall,
    private readonly method: WireMethod,
    readonly responses: StreamCall,
  ) {}

  /** The next request the client wrote on the stream (decoded as etcd would read it). */
  async nextRequest(): Promise<unknown> {
    const step = await this.requests.next();
    if (step.done) throw new Error(`the client ended the requests of ${this.call.path}`);
    return step.value;
  }

  /** Whether requests wait to be read. */
  get pendingRequests(): number {
    return this.requests.size;
  }

  /** @internal the wire's side: a request the client wrote. */
  received(request: unknown): void {
    this.requests.push(request);
  }

  /** @internal the client ended its requests. */
  requestsEnded(): void {
    this.requests.end();
  }

  /** Sends a response (a partial message) to the client. */
  respond(message: unknown): void {
    this.responses.push(roundTrip(this.method.responseType, message));
  }

  /** Ends the stream with a failure, as a wire reports one. */
  fail(code: Status, details: string, delivery: Delivery = "sent-and-lost"): void {
    this.responses.error(new WireFailure(this.call.path, code, details, delivery));
  }

  /** Ends the stream as a server that closed it with status OK. */
  end(): void {
    this.responses.end();
  }
}

type Codec = WireMethod["requestType"];

function roundTrip(codec: Codec, message: unknown): unknown {
  return codec.decode(codec.encode(codec.fromPartial(message as never) as never).finish());
}

interface ScriptedSlot extends EndpointSlot {
  up: boolean;
  /** Fails a call in flight, as a wire does when its endpoint stopped answering. */
  inFlight: Set<(why: string) => void>;
}

/** Endpoints that are up (connected at once) unless the test takes them down. */
export class ScriptedEndpoints extends EndpointRotation<ScriptedSlot> {
  constructor(endpoints: Endpoint[]) {
    super();
    this.setEndpoints(endpoints);
  }

  /** Takes an endpoint down (its calls fail as never sent) or brings it back. */
  setUp(address: string, up: boolean): void {
    const slot = this.slot(address);
    if (!slot) throw new Error(`no endpoint ${address}`);
    slot.up = up;
  }

  isUp(address: string): boolean {
    return this.slot(address)?.up ?? false;
  }

  /** The calls in flight to an endpoint. */
  inFlight(address: string): Set<(why: string) => void> {
    const slot = this.slot(address);
    if (!slot) throw new Error(`no endpoint ${address}`);
    return slot.inFlight;
  }

  protected open(endpoint: Endpoint): ScriptedSlot {
    return { endpoint, quarantinedUntil: 0, up: true, inFlight: new Set() };
  }

  protected release(): void {}

  protected abandon(slot: ScriptedSlot, why: string): void {
    const lost = [...slot.inFlight];
    slot.inFlight.clear();
    for (const lose of lost) lose(why);
  }

  protected down(slot: ScriptedSlot): boolean {
    return !slot.up;
  }

  isReady(address: string): boolean {
    return this.isUp(address);
  }

  protected dial(slot: ScriptedSlot): Promise<ConnectOutcome> {
    return Promise.resolve(slot.up ? "ready" : "failed");
  }
}

export class ScriptedWire implements Wire {
  readonly endpoints: ScriptedEndpoints;
  readonly limits: WireLimits = { streamRequests: undefined };
  /** Every attempt sent, in order. */
  readonly sent: SentCall[] = [];
  private readonly unary = new Map<string, UnaryScript>();
  private readonly opened = new AsyncQueue<ScriptedStream>();
  /** Every stream opened, in order. */
  readonly streams: ScriptedStream[] = [];
  closed = false;

  constructor(endpoints: Endpoint[]) {
    this.endpoints = new ScriptedEndpoints(endpoints);
  }

  /** Answers every later call of `path` ("/etcdserverpb.KV/Range") with `script`. */
  on(path: string, script: UnaryScript): this {
    this.unary.set(path, script);
    return this;
  }

  /** The next stream the client opens (waits for it). */
  async nextStream(): Promise<ScriptedStream> {
    const step = await this.opened.next();
    if (step.done) throw new Error("the wire was closed");
    return step.value;
  }

  send = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const { path } = method;
    const codec = binaryCodec(method);
    const decodeRequest = (message: unknown) => method.requestType.decode(codec.serialize(message));
    const call: SentCall = { endpoint, path, request: method.requestStream ? undefined : decodeRequest(request), options };
    this.sent.push(call);
    if (!this.endpoints.isUp(endpoint)) {
      const failure = new WireFailure(path, Status.UNAVAILABLE, `${endpoint} is down (scripted)`, "never-sent");
      if (!method.requestStream && !method.responseStream) return Promise.reject(failure);
      return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(failure) }) };
    }
    if (method.requestStream || method.responseStream) {
      let stream: ScriptedStream | undefined;
      const source = {
        pause: () => void (stream!.paused = true),
        resume: () => void (stream!.paused = false),
        isPaused: () => stream?.paused ?? false,
        cancel: () => {
          stream!.cancelled = true;
          responses.error(abortError());
        },
      };
      const responses = new StreamCall(source, options.signal);
      stream = new ScriptedStream(call, method, responses);
      if (method.requestStream) {
        const sink = {
          write: (message: unknown) => {
            stream!.received(decodeRequest(message));
            return true;
          },
          drained: () => Promise.resolve(),
          end: () => stream!.requestsEnded(),
        };
        void sendRequests(request as AsyncIterable<unknown>, sink, responses);
      }
      this.streams.push(stream);
      this.opened.push(stream);
      return responses;
    }
    const script = this.unary.get(path);
    if (!script) return Promise.reject(new WireFailure(path, Status.UNIMPLEMENTED, `no script for ${path}`, "answered"));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError());
    const inFlight = this.endpoints.inFlight(endpoint);
    return new Promise((resolve, reject) => {
      // An aborted call fails at once, as a wire cancels its stream; a late answer is dropped. So
      // does one whose endpoint the client abandoned.
      const onAbort = () => reject(abortError());
      const lose = (why: string) => reject(new WireFailure(path, Status.UNAVAILABLE, why, "sent-and-lost"));
      signal?.addEventListener("abort", onAbort, { once: true });
      inFlight.add(lose);
      Promise.resolve()
        .then(() => script(call))
        .then((response) => roundTrip(method.responseType, response))
        .then(resolve, reject)
        .finally(() => {
          signal?.removeEventListener("abort", onAbort);
          inFlight.delete(lose);
        });
    });
  };

  close(): Promise<void> {
    this.closed = true;
    this.opened.end();
    return this.endpoints.close();
  }
}

/** A client of the SDK over a scripted wire: the whole stack above the wire, unchanged. */
export class ScriptedClient extends BaseClient {
  readonly wire: ScriptedWire;

  /** @param diagnosticsChannel as the Node entries give it (node:diagnostics_channel), or a stand-in. */
  constructor(config: Partial<ClientConfig> = {}, diagnosticsChannel?: DiagnosticsChannelModule) {
    const endpoints = config.endpoints ?? ["a:2379", "b:2379", "c:2379"];
    let made: ScriptedWire | undefined;
    super({ ...config, endpoints, transport: "grpc" }, { entry: "scripted", transports: ["grpc"] }, (resolved) => (made = new ScriptedWire(resolved.endpoints)), diagnosticsChannel);
    this.wire = made!;
  }
}
