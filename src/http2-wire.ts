import { type ClientHttp2Stream, constants, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from "node:http2";
import { once } from "node:events";
import { type CallOptions, ClientError, type Metadata, Status } from "nice-grpc-common";
import type { ResolvedConfig } from "./config.js";
import { Http2EndpointPool } from "./http2-connection.js";
import { wireMethodAt } from "./service-client.js";
import { abortError, type CallSource, sendRequests, StreamCall } from "./stream-call.js";
import type { Wire, WireLimits } from "./transport.js";

/** gRPC's message prefix: a compression flag and the length, big-endian. */
const PREFIX_BYTES = 5;
const EMPTY = Buffer.alloc(0);

/** gRPC status for an HTTP status that came without one, as the gRPC spec maps them. */
function statusOfHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/** A stream reset without a gRPC status, as grpc-js reports it. */
function resetStatus(rstCode: number): [Status, string] {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return [Status.UNAVAILABLE, "Stream refused by server"];
    case constants.NGHTTP2_CANCEL:
      // Not this call's own cancel (that sets its status first): Node resets the streams of a
      // connection that was lost this way.
      return [Status.UNAVAILABLE, "Connection dropped"];
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return [Status.RESOURCE_EXHAUSTED, "Bandwidth exhausted or memory limit exceeded"];
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return [Status.PERMISSION_DENIED, "Protocol not secure enough"];
    default:
      return [Status.INTERNAL, `Received RST_STREAM with code ${rstCode}`];
  }
}

/** A call's headers without metadata, made once per method (Node copies what it is given). */
const baseHeaders = new Map<string, OutgoingHttpHeaders>();

function requestHeaders(path: string, metadata: Metadata | undefined): OutgoingHttpHeaders {
  let base = baseHeaders.get(path);
  if (!base) baseHeaders.set(path, (base = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }));
  if (!metadata) return base;
  const headers = { ...base };
  for (const [key, values] of metadata) {
    const texts = values.map((value) => (typeof value === "string" ? value : Buffer.from(value).toString("base64")));
    headers[key] = texts.length === 1 ? texts[0] : texts;
  }
  return headers;
}

/**
 * One call's HTTP/2 stream: frames its requests, reads gRPC messages out of the data it
 * receives, and settles with the status of the trailers (or of a reset, or of a lost connection).
 */
class Http2Call implements CallSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its prefix was; -1 between messages. */
  private messageBytes = -1;
  private status: [Status, string] | undefined;
  private streamError: Error | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly path: string,
    private readonly deserialize: (bytes: Uint8Array) => unknown,
    private readonly maxReceiveBytes: number,
    private readonly onMessage: (message: unknown) => void,
    private readonly onEnd: (failure: ClientError | undefined) => void,
  ) {
    stream.on("response", (headers) => this.headers(headers));
    stream.on("trailers", (trailers) => this.headers(trailers));
    stream.on("data", (chunk: Buffer) => this.data(chunk));
    stream.on("error", (err: Error) => (this.streamError ??= err));
    stream.on("close", () => this.closed());
  }

  write(message: Buffer): boolean {
    return this.stream.write(frame(message));
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  isPaused(): boolean {
    return this.stream.isPaused();
  }

  cancel(): void {
    this.status ??= [Status.CANCELLED, "Cancelled on client"];
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private headers(headers: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
    const grpcStatus = headers["grpc-status"];
    if (grpcStatus !== undefined) {
      const message = headers["grpc-message"];
      this.status ??= [Number(grpcStatus) as Status, typeof message === "string" ? decodeURIComponent(message) : ""];
    } else if (headers[":status"] !== undefined && headers[":status"] !== 200) {
      this.status ??= [statusOfHttp(headers[":status"]), `Received HTTP status code ${headers[":status"]}`];
    }
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.status === undefined) {
      if (this.messageBytes < 0) {
        if (this.buffered < PREFIX_BYTES) return;
        const prefix = this.take(PREFIX_BYTES);
        this.messageBytes = prefix.readUInt32BE(1);
        if (prefix[0] !== 0) return this.failLocally(Status.INTERNAL, "Received a compressed message, but no compression was asked for");
        if (this.maxReceiveBytes >= 0 && this.messageBytes > this.maxReceiveBytes) {
          return this.failLocally(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${this.messageBytes} vs. ${this.maxReceiveBytes})`);
        }
      }
      if (this.buffered < this.messageBytes) return;
      const bytes = this.take(this.messageBytes);
      this.messageBytes = -1;
      let message: unknown;
      try {
        message = this.deserialize(bytes);
      } catch (err) {
        return this.failLocally(Status.INTERNAL, `Failed to parse server response: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.onMessage(message);
    }
  }

  /** The next `bytes` of what arrived, copied only when they span chunks. */
  private take(bytes: number): Buffer {
    if (bytes === 0) return EMPTY;
    this.buffered -= bytes;
    const first = this.chunks[0]!;
    if (first.length >= bytes) {
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const joined = Buffer.concat(this.chunks);
    const rest = joined.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    return joined.subarray(0, bytes);
  }

  private failLocally(code: Status, details: string): void {
    this.status = [code, details];
    this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private closed(): void {
    const { stream } = this;
    let status = this.status;
    if (!status) {
      // A reset, a connection lost, or a stream that never left (the connection failed first).
      if (stream.pending) status = [Status.UNAVAILABLE, `No connection established. Last error: ${this.streamError?.message ?? "connection closed"}`];
      else if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) status = resetStatus(stream.rstCode);
      else if (this.streamError) status = [Status.UNAVAILABLE, `Connection dropped: ${this.streamError.message}`];
      else status = [Status.UNAVAILABLE, "Connection dropped before the call's status arrived"];
    } else if (status[0] === Status.OK && (this.buffered > 0 || this.messageBytes >= 0)) {
      status = [Status.INTERNAL, "Response ended in the middle of a message"];
    }
    this.onEnd(status[0] === Status.OK ? undefined : new ClientError(this.path, status[0], status[1]));
  }
}

function frame(message: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, PREFIX_BYTES);
  return framed;
}

/**
 * gRPC over Node's own HTTP/2 module: one connection per endpoint, and per call one stream with
 * nothing between it and the middleware chain. It does what grpc-js does for a call to a known
 * endpoint (framing, status, limits, keepalive) and none of what the SDK does above it (retries,
 * failover, deadlines); in the bench that costs about half of grpc-js's CPU per call.
 */
export class Http2Wire implements Wire {
  readonly endpoints: Http2EndpointPool;
  readonly limits: WireLimits = { streamRequests: undefined };
  private readonly maxSendBytes: number;
  private readonly maxReceiveBytes: number;

  constructor(config: ResolvedConfig) {
    this.endpoints = new Http2EndpointPool(config);
    this.maxSendBytes = config.maxCallSendMsgSize;
    this.maxReceiveBytes = config.maxCallRecvMsgSize;
  }

  send = (endpoint: string, path: string, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const connection = this.endpoints.connection(endpoint);
    if (!connection) return undefined;
    const { method, serialize, deserialize } = wireMethodAt(path);
    const { signal } = options;
    const streaming = method.requestStream || method.responseStream;
    let firstMessage: Buffer | undefined;
    if (!method.requestStream) {
      firstMessage = serialize(request);
      if (firstMessage.length > this.maxSendBytes) return failedCall(this.tooLargeError(path, firstMessage.length), streaming);
    }
    if (!streaming && signal?.aborted) return Promise.reject(abortError());
    const opened = connection.request(requestHeaders(path, options.metadata));
    if (!("write" in opened)) return failedCall(new ClientError(path, Status.UNAVAILABLE, opened.reason), streaming);
    const stream = opened;
    if (streaming) {
      let responses: StreamCall | undefined;
      const call = new Http2Call(stream, path, deserialize, this.maxReceiveBytes, (message) => responses!.push(message), (failure) => (failure ? responses!.error(failure) : responses!.end()));
      responses = new StreamCall(call, signal);
      if (firstMessage) stream.end(frame(firstMessage));
      else {
        const sink = {
          write: (message: unknown) => {
            const bytes = serialize(message);
            if (bytes.length > this.maxSendBytes) throw this.tooLargeError(path, bytes.length);
            return call.write(bytes);
          },
          drained: () => once(stream, "drain"),
          end: () => stream.end(),
        };
        void sendRequests(request as AsyncIterable<unknown>, sink, responses);
      }
      return responses;
    }
    return new Promise((resolve, reject) => {
      let response: unknown;
      const onAbort = () => call.cancel();
      const call = new Http2Call(
        stream,
        path,
        deserialize,
        this.maxReceiveBytes,
        (message) => (response = message),
        (failure) => {
          signal?.removeEventListener("abort", onAbort);
          if (signal?.aborted) reject(abortError());
          else if (failure) reject(failure);
          else if (response === undefined) reject(new ClientError(path, Status.UNIMPLEMENTED, "No message received"));
          else resolve(response);
        },
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      stream.end(frame(firstMessage!));
    });
  };

  private tooLargeError(path: string, bytes: number): ClientError {
    return new ClientError(path, Status.RESOURCE_EXHAUSTED, `Attempted to send message with a size larger than ${this.maxSendBytes} (${bytes} bytes)`);
  }

  close(): void {
    this.endpoints.close();
  }
}

/** A call that failed before it was sent: a rejected promise, or a stream that fails on its first read. */
function failedCall(failure: ClientError, streaming: boolean): Promise<never> | AsyncIterable<never> {
  if (!streaming) return Promise.reject(failure);
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(failure) }) };
}
