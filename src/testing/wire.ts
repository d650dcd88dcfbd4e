import { type CallOptions, Status } from "nice-grpc-common";
import type { Endpoint } from "../core/config.js";
import { TransportError } from "../core/errors.js";
import { WireFailure } from "../core/wire-failure.js";
import { type ConnectOutcome, type EndpointSlot, EndpointRotation } from "../wire/endpoints.js";
import { abortError, type CallSource, sendRequests, StreamCall } from "../wire/stream-call.js";
import type { MessageCodec, Wire, WireLimits, WireMethod } from "../wire/wire.js";
import { Refusal } from "./refusal.js";
import type { MemoryServer, StreamRequests } from "./server.js";

/** The in-memory etcd's endpoint, always connected. */
class MemoryEndpoints extends EndpointRotation<EndpointSlot> {
  constructor(endpoints: Endpoint[]) {
    super();
    this.setEndpoints(endpoints);
  }

  isReady(): boolean {
    return true;
  }

  protected open(endpoint: Endpoint): EndpointSlot {
    return { endpoint, quarantinedUntil: 0 };
  }

  protected release(): void {}

  /** Never called: the in-memory etcd always answers its probe. */
  protected abandon(): void {}

  protected down(): boolean {
    return false;
  }

  protected dial(): Promise<ConnectOutcome> {
    return Promise.resolve("ready");
  }
}

/** The client's limits a wire holds messages to. */
export interface MemoryWireLimits {
  endpoints: Endpoint[];
  /** maxCallSendMsgSize. */
  maxSendBytes: number;
  /** maxCallRecvMsgSize; negative for none. */
  maxReceiveBytes: number;
}

/** Node's MessagePort can let the process exit while it waits; a browser's has nothing of the kind. */
type Port = MessagePort & { ref?(): void; unref?(): void };

/**
 * Runs callbacks as macrotasks, in order, each once every promise job queued before it has run.
 * A call's answer thus reaches the client as one from the network does: after the client has
 * read what its streams hold (the watch events of a write before the write's response). A
 * MessageChannel, since neither Node's 1 ms nor browsers' 4 ms timer clamping slows it and fake
 * timers leave it alone; its port holds a Node process open only while an answer waits.
 */
class Macrotasks {
  private readonly callbacks: (() => void)[] = [];
  private channel: MessageChannel | undefined;

  run(callback: () => void): void {
    if (!this.channel) {
      this.channel = new MessageChannel();
      this.channel.port1.onmessage = () => this.next();
    }
    if (this.callbacks.length === 0) (this.channel.port1 as Port).ref?.();
    this.callbacks.push(callback);
    this.channel.port2.postMessage(null);
  }

  /** Runs what still waits, at once, and lets the channel go. */
  close(): void {
    this.channel?.port1.close();
    this.channel = undefined;
    for (const callback of this.callbacks.splice(0)) callback();
  }

  private next(): void {
    this.callbacks.shift()?.();
    if (this.callbacks.length === 0) (this.channel?.port1 as Port | undefined)?.unref?.();
  }
}

/** A stream whose call failed before it began. */
function failedStream(error: unknown): AsyncIterable<unknown> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }) };
}

/**
 * A wire to an etcd server in this process: each call goes to the MemoryServer as a gRPC call
 * would go to etcd, its messages through the generated binary codecs both ways (so the client
 * gets exactly what a gRPC wire would hand it, and shares no object with the server), held to
 * the client's message size limits. Failures are etcd's own, as WireFailures that etcd answered.
 */
export class MemoryWire implements Wire {
  readonly endpoints: MemoryEndpoints;
  readonly limits: WireLimits = { streamRequests: undefined };
  /** Cancels each stream still open, for close(). */
  private readonly openStreams = new Set<() => void>();
  private readonly answers = new Macrotasks();

  constructor(
    private readonly server: MemoryServer,
    private readonly config: MemoryWireLimits,
  ) {
    this.endpoints = new MemoryEndpoints(config.endpoints);
  }

  send = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> => {
    const notServed = this.server.notServed(method.path);
    if (notServed) {
      throw new TransportError(`${method.path}: the in-memory etcd of etcd-sdk/testing does not do ${notServed}; test this against a real etcd`, Status.UNIMPLEMENTED, endpoint);
    }
    if (method.requestStream || method.responseStream) return this.stream(method, request, options);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError());
    // The call is served now, in the order calls come; its answer comes as the network's would.
    const outcome = this.serve(method, request);
    return new Promise((resolve, reject) => {
      // A call aborted before its answer comes fails at once, as a wire cancels its stream; the
      // server served it all the same.
      const onAbort = () => reject(abortError());
      signal?.addEventListener("abort", onAbort, { once: true });
      this.answers.run(() => {
        signal?.removeEventListener("abort", onAbort);
        if ("failure" in outcome) reject(outcome.failure);
        else resolve(outcome.response);
      });
    });
  };

  private serve(method: WireMethod, request: unknown): { response: unknown } | { failure: unknown } {
    try {
      const { message, bytes } = this.decodeRequest(method, request);
      return { response: this.encodeResponse(method, this.server.unary(method.path, message, bytes)) };
    } catch (err) {
      return { failure: this.failure(method.path, err) };
    }
  }

  /** Ends the streams still open and gives the answers still on their way; there is no connection to close. */
  close(): Promise<void> {
    for (const cancel of [...this.openStreams]) cancel();
    this.answers.close();
    return this.endpoints.close();
  }

  private stream(method: WireMethod, request: unknown, options: CallOptions): AsyncIterable<unknown> {
    if (options.signal?.aborted) return failedStream(abortError());
    let requests: StreamRequests | undefined;
    let open = true;
    const finish = () => {
      open = false;
      this.openStreams.delete(cancel);
    };
    const cancel = () => {
      if (!open) return;
      finish();
      requests?.cancel();
      responses.error(abortError());
    };
    // The server answers at once, so a slow reader only makes the responses queue up.
    const source: CallSource = { pause() {}, resume() {}, isPaused: () => false, cancel };
    const responses = new StreamCall(source, options.signal);
    this.openStreams.add(cancel);
    const sink = {
      send: (message: object) => {
        if (!open) return;
        try {
          responses.push(this.encodeResponse(method, message));
        } catch (err) {
          finish();
          requests?.cancel();
          responses.error(this.failure(method.path, err));
        }
      },
      end: () => {
        finish();
        responses.end();
      },
      fail: (err: unknown) => {
        finish();
        responses.error(this.failure(method.path, err));
      },
    };
    try {
      if (!method.requestStream) {
        this.server.stream(method.path, sink, this.decodeRequest(method, request).message);
        return responses;
      }
      const opened = this.server.stream(method.path, sink);
      requests = opened;
      const requestSink = {
        write: (message: unknown) => {
          try {
            if (open) opened.receive(this.decodeRequest(method, message).message);
          } catch (err) {
            throw this.failure(method.path, err);
          }
          return true;
        },
        drained: () => Promise.resolve(),
        end: () => opened.end(),
      };
      void sendRequests(request as AsyncIterable<unknown>, requestSink, responses);
    } catch (err) {
      sink.fail(err);
    }
    return responses;
  }

  /** A request as etcd reads it off the wire, held to the send limit and the server's receive limit. */
  private decodeRequest(method: WireMethod, request: unknown): { message: unknown; bytes: number } {
    const codec = method.requestType;
    const encoded = codec.encode(codec.fromPartial(request as never) as never).finish();
    const max = this.config.maxSendBytes;
    if (encoded.length > max) {
      throw new WireFailure(method.path, Status.RESOURCE_EXHAUSTED, `the request of ${encoded.length} bytes is over the limit of ${max}`, "never-sent", { sizeLimit: "send" });
    }
    this.server.received(encoded.length);
    return { message: codec.decode(encoded), bytes: encoded.length };
  }

  /** A response as the client reads it off the wire, held to the receive limit. */
  private encodeResponse(method: WireMethod, response: object): unknown {
    const codec: MessageCodec = method.responseType;
    const encoded = codec.encode(codec.fromPartial(response as never) as never).finish();
    const max = this.config.maxReceiveBytes;
    if (max >= 0 && encoded.length > max) {
      throw new WireFailure(method.path, Status.RESOURCE_EXHAUSTED, `the response of ${encoded.length} bytes is over the limit of ${max}`, "answered", { sizeLimit: "receive" });
    }
    return codec.decode(encoded);
  }

  /** What a call fails with: etcd's answer as a WireFailure; a failure of the wire itself as it is. */
  private failure(path: string, err: unknown): unknown {
    return err instanceof Refusal ? new WireFailure(path, err.code, err.message, "answered") : err;
  }
}
