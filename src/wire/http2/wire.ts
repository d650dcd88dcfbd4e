import { type ClientHttp2Stream, constants, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from "node:http2";
import { once } from "node:events";
import { type CallOptions, type Metadata, Status } from "nice-grpc-common";
import type { ResolvedConfig } from "../../core/config.js";
import { Http2EndpointPool } from "./connection.js";
import { type Delivery, type SizeLimit, WireFailure } from "../../core/wire-failure.js";
import { binaryCodec } from "../binary-codec.js";
import { grpcCodeOf, grpcStatusOfHttp } from "../http-status.js";
import { abortError, type CallSource, sendRequests, StreamCall } from "../stream-call.js";
import type { Wire, WireLimits, WireMethod } from "../wire.js";

/** gRPC's message prefix: a compression flag and the length, big-endian. */
const PREFIX_BYTES = 5;
const EMPTY = Buffer.alloc(0);

/** How a call ended: its gRPC status and how far it got. */
interface CallStatus {
  code: Status;
  details: string;
  delivery: Delivery;
  sizeLimit?: SizeLimit;
}

/** The status a server sent, from a call's headers or trailers. */
function answered(code: Status, details: string): CallStatus {
  return { code, details, delivery: "answered" };
}

/**
 * grpc-message, percent-encoded as the gRPC spec says. A server that encodes it wrongly still gets
 * its text through: a message must never fail the client in a listener nobody can catch.
 */
function decodeGrpcMessage(message: string | string[] | undefined): string {
  if (typeof message !== "string") return "";
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}

/** Socket errors that end a connection under its streams, which Node then resets with INTERNAL_ERROR. */
const CONNECTION_LOST = new Set(["ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNABORTED"]);

/** Whether a stream failed because its connection was lost (a reset, a timeout), not by the server's choice. */
function connectionLost(err: Error | undefined): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && CONNECTION_LOST.has(code);
}

/** A stream reset without a gRPC status, with the codes grpc-js gives it. */
function resetStatus(rstCode: number): CallStatus {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      // The server did not read the stream (a member shutting down): another may take it.
      return { code: Status.UNAVAILABLE, details: "stream refused by the server before it was read", delivery: "refused-unread" };
    case constants.NGHTTP2_CANCEL:
      // Not this call's own cancel (that sets its status first): Node resets the streams of a
      // connection that was lost this way.
      return { code: Status.UNAVAILABLE, details: "connection dropped", delivery: "sent-and-lost" };
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return { code: Status.RESOURCE_EXHAUSTED, details: "bandwidth exhausted or memory limit exceeded", delivery: "sent-and-lost" };
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return { code: Status.PERMISSION_DENIED, details: "protocol not secure enough", delivery: "sent-and-lost" };
    default:
      return { code: Status.INTERNAL, details: `stream reset with HTTP/2 code ${rstCode}`, delivery: "sent-and-lost" };
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
  private status: CallStatus | undefined;
  private streamError: Error | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly path: string,
    private readonly deserialize: (bytes: Uint8Array) => unknown,
    private readonly maxReceiveBytes: number,
    private readonly onMessage: (message: unknown) => void,
    private readonly onEnd: (failure: WireFailure | undefined) => void,
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
    this.status ??= { code: Status.CANCELLED, details: "cancelled by the client", delivery: "sent-and-lost" };
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private headers(headers: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
    const grpcStatus = headers["grpc-status"];
    if (grpcStatus !== undefined) {
      this.status ??= answered(grpcCodeOf(grpcStatus), decodeGrpcMessage(headers["grpc-message"]));
    } else if (headers[":status"] !== undefined && headers[":status"] !== 200) {
      this.status ??= answered(grpcStatusOfHttp(headers[":status"]), `the server answered HTTP status ${headers[":status"]} without a gRPC status`);
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
        if (prefix[0] !== 0) return this.failLocally(answered(Status.INTERNAL, "received a compressed message, but no compression was asked for"));
        if (this.maxReceiveBytes >= 0 && this.messageBytes > this.maxReceiveBytes) {
          const details = `received a message of ${this.messageBytes} bytes, over the limit of ${this.maxReceiveBytes}`;
          return this.failLocally({ code: Status.RESOURCE_EXHAUSTED, details, delivery: "answered", sizeLimit: "receive" });
        }
      }
      if (this.buffered < this.messageBytes) return;
      const bytes = this.take(this.messageBytes);
      this.messageBytes = -1;
      let message: unknown;
      try {
        message = this.deserialize(bytes);
      } catch (err) {
        return this.failLocally(answered(Status.INTERNAL, `could not decode the server's response: ${err instanceof Error ? err.message : String(err)}`));
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

  private failLocally(status: CallStatus): void {
    this.status = status;
    this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private closed(): void {
    const { stream } = this;
    let status = this.status;
    if (!status) {
      // A reset, a connection lost, or a stream that never left (the connection failed first).
      if (stream.pending) status = { code: Status.UNAVAILABLE, details: `no connection: ${this.streamError?.message ?? "connection closed"}`, delivery: "never-sent" };
      // A reset by the server, not one Node made of a lost connection.
      else if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR && !connectionLost(this.streamError)) status = resetStatus(stream.rstCode);
      else if (this.streamError) status = { code: Status.UNAVAILABLE, details: `connection dropped: ${this.streamError.message}`, delivery: "sent-and-lost" };
      else status = { code: Status.UNAVAILABLE, details: "connection dropped before the call's status arrived", delivery: "sent-and-lost" };
    } else if (status.code === Status.OK && (this.buffered > 0 || this.messageBytes >= 0)) {
      status = answered(Status.INTERNAL, "the response ended in the middle of a message");
    }
    this.onEnd(status.code === Status.OK ? undefined : new WireFailure(this.path, status.code, status.details, status.delivery, { sizeLimit: status.sizeLimit }));
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

  send = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const connection = this.endpoints.connection(endpoint);
    if (!connection) return undefined;
    const { path } = method;
    const { serialize, deserialize } = binaryCodec(method);
    const { signal } = options;
    const streaming = method.requestStream || method.responseStream;
    let firstMessage: Buffer | undefined;
    if (!method.requestStream) {
      firstMessage = serialize(request);
      if (firstMessage.length > this.maxSendBytes) return failedCall(this.tooLargeError(path, firstMessage.length), streaming);
    }
    if (!streaming && signal?.aborted) return Promise.reject(abortError());
    const opened = connection.request(requestHeaders(path, options.metadata));
    if (!("write" in opened)) return failedCall(new WireFailure(path, Status.UNAVAILABLE, opened.reason, "never-sent", { tls: opened.tls }), streaming);
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
          else if (response === undefined) reject(new WireFailure(path, Status.UNIMPLEMENTED, "the server answered without a response message", "answered"));
          else resolve(response);
        },
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      stream.end(frame(firstMessage!));
    });
  };

  private tooLargeError(path: string, bytes: number): WireFailure {
    return new WireFailure(path, Status.RESOURCE_EXHAUSTED, `the request of ${bytes} bytes is over the limit of ${this.maxSendBytes}`, "never-sent", { sizeLimit: "send" });
  }

  close(): Promise<void> {
    return this.endpoints.close();
  }
}

/** A call that failed before it was sent: a rejected promise, or a stream that fails on its first read. */
function failedCall(failure: WireFailure, streaming: boolean): Promise<never> | AsyncIterable<never> {
  if (!streaming) return Promise.reject(failure);
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(failure) }) };
}
