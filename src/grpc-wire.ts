import { type ClientDuplexStream, type ClientReadableStream, Client as GrpcClient, Metadata as GrpcMetadata, type ServiceError } from "@grpc/grpc-js";
import type { Channel } from "nice-grpc";
import { type CallOptions, ClientError, type Metadata } from "nice-grpc-common";
import { once } from "node:events";
import type { ResolvedConfig } from "./config.js";
import { EndpointPool } from "./endpoints.js";
import { AsyncQueue } from "./queue.js";
import { type GeneratedMethod, methodAt } from "./service-client.js";
import type { Wire, WireLimits } from "./transport.js";

interface Codec {
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

/** Responses a stream holds for a slow reader (a snapshot written to disk) before it stops reading. */
const STREAM_BUFFER = 16;

/** What an aborted call fails with, as nice-grpc's own calls do (the middleware above knows it). */
function abortError(): Error {
  return Object.assign(new Error("The operation has been aborted"), { name: "AbortError" });
}

function grpcMetadata(metadata: Metadata | undefined): GrpcMetadata {
  const converted = new GrpcMetadata();
  if (metadata) for (const [key, values] of metadata) for (const value of values) converted.add(key, typeof value === "string" ? value : Buffer.from(value));
  return converted;
}

/** A failed call's grpc-js status as nice-grpc's ClientError; anything else as it is. */
function clientError(err: unknown, path: string): unknown {
  const status = err as Partial<ServiceError>;
  return typeof status.code === "number" && typeof status.details === "string" ? new ClientError(path, status.code, status.details) : err;
}

/**
 * A grpc-js streaming call read as an async iterator: its messages go into a queue that `next()`
 * reads directly. Reading it through the call's Node stream and nice-grpc's wrapper put three
 * layers of async generators around every message, which cost a watch event as much CPU as
 * the rest of its way. The call stops reading from the connection while STREAM_BUFFER messages
 * wait for a slow reader.
 */
class StreamCall implements AsyncIterableIterator<unknown> {
  private readonly queue = new AsyncQueue<unknown>();
  /** Whether the responses ended (or failed, or the reader left): no more requests are sent. */
  finished = false;

  constructor(
    private readonly call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
    path: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    call.on("data", (message: unknown) => {
      this.queue.push(message);
      if (this.queue.size >= STREAM_BUFFER) call.pause();
    });
    // An aborted call fails as nice-grpc's would, with an AbortError the middleware above knows.
    call.on("error", (err: unknown) => this.finish(() => this.queue.fail(signal?.aborted ? abortError() : clientError(err, path))));
    call.on("end", () => this.finish(() => this.queue.end()));
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener("abort", this, { once: true });
  }

  /** The signal's abort listener: the call then fails with CANCELLED, reported as an AbortError. */
  handleEvent(): void {
    this.call.cancel();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, undefined>> {
    if (this.call.isPaused() && this.queue.size < STREAM_BUFFER / 2) this.call.resume();
    return this.queue.next();
  }

  /** The reader left early: the call ends, and nothing more is read. */
  return(): Promise<IteratorResult<unknown, undefined>> {
    this.finish(() => this.queue.end());
    this.call.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Fails the call with `err` from the request side: a request that could not be sent. */
  fail(err: unknown): void {
    this.finish(() => this.queue.fail(err));
    this.call.cancel();
  }

  private finish(settle: () => void): void {
    this.finished = true;
    this.signal?.removeEventListener("abort", this);
    settle();
  }
}

/** Writes the requests of a bidirectional call as they come, minding the call's flow control. */
async function sendRequests(requests: AsyncIterable<unknown>, call: ClientDuplexStream<unknown, unknown>, responses: StreamCall): Promise<void> {
  try {
    for await (const request of requests) {
      if (responses.finished) return;
      if (!call.write(request)) await once(call, "drain");
    }
    call.end();
  } catch (err) {
    if (!responses.finished) responses.fail(err);
  }
}

/**
 * gRPC over @grpc/grpc-js, for Node: one channel per endpoint. Calls go straight to grpc-js with
 * the generated codecs; the middleware chain above has done what nice-grpc's per-call wrapper
 * would.
 */
export class GrpcWire implements Wire {
  readonly endpoints: EndpointPool;
  readonly limits: WireLimits = { streamRequests: undefined };
  private readonly grpcClients = new WeakMap<Channel, GrpcClient>();
  /** Codecs of methods as grpc-js takes them, by gRPC path. */
  private readonly codecs = new Map<string, Codec>();

  constructor(config: ResolvedConfig) {
    this.endpoints = new EndpointPool(config);
  }

  send = (endpoint: string, path: string, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const channel = this.endpoints.channel(endpoint);
    if (!channel) return undefined;
    const method = methodAt(path);
    if (!method) throw new Error(`no generated method for ${path}`);
    const client = this.client(channel);
    const { serialize, deserialize } = this.codec(path, method);
    const { signal, metadata } = options;
    if (method.requestStream) {
      const call = client.makeBidiStreamRequest(path, serialize, deserialize, grpcMetadata(metadata));
      const responses = new StreamCall(call, path, signal);
      void sendRequests(request as AsyncIterable<unknown>, call, responses);
      return responses;
    }
    if (method.responseStream) return new StreamCall(client.makeServerStreamRequest(path, serialize, deserialize, request, grpcMetadata(metadata)), path, signal);
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        call.cancel();
        reject(abortError());
      };
      const call = client.makeUnaryRequest(path, serialize, deserialize, request, grpcMetadata(metadata), (err: ServiceError | null, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(clientError(err, path));
        else resolve(response);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  private client(channel: Channel): GrpcClient {
    let client = this.grpcClients.get(channel);
    if (!client) this.grpcClients.set(channel, (client = new GrpcClient("", null as never, { channelOverride: channel })));
    return client;
  }

  private codec(path: string, method: GeneratedMethod): Codec {
    let codec = this.codecs.get(path);
    if (!codec) {
      const { requestType, responseType } = method;
      codec = {
        // Requests come from the API as partial messages, which the encoder needs filled in.
        serialize: (value) => {
          const bytes = requestType.encode(requestType.fromPartial(value as never) as never).finish();
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        },
        deserialize: (bytes) => responseType.decode(bytes),
      };
      this.codecs.set(path, codec);
    }
    return codec;
  }

  close(): void {
    this.endpoints.close();
  }
}
