import type { CallOptions, MethodDescriptor } from "nice-grpc-common";
import type { EndpointSet } from "./endpoints.js";

/**
 * What carries calls to etcd for a transport (the config's `transport`): gRPC over grpc-js
 * ("grpc"), gRPC over node:http2 ("http2"), or JSON over etcd's HTTP gateway ("gateway"). The
 * call pipeline above runs the middleware and picks an endpoint; a wire sends one attempt there.
 *
 * A wire's failures are WireFailures (src/core/wire-failure.ts): each says how far its attempt got,
 * which is all the pipeline reads of it to decide whether another endpoint may take the call.
 */
export interface Wire {
  readonly endpoints: EndpointSet;
  /** Sends one attempt of a call, with no middleware (the chain above already ran). */
  readonly send: SendAttempt;
  /** What the wire cannot do that gRPC can; see `WireLimits`. */
  readonly limits: WireLimits;
  /** Ends every call and connection; resolves once the connections are gone. */
  close(): Promise<void>;
}

/**
 * Sends one attempt of a call to an endpoint (host:port): a promise for unary calls, a stream
 * otherwise; undefined when the endpoint has left the list meanwhile (nothing was sent).
 */
export type SendAttempt = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions) => Promise<unknown> | AsyncIterable<unknown> | undefined;

export interface WireLimits {
  /**
   * Why a stream cannot take requests once open (a watch progress request), or undefined when it
   * can. etcd's gateway reads a request body to its end before it answers.
   */
  streamRequests: string | undefined;
}

/** The codec ts-proto generates for every message: binary, JSON and partial objects. */
export interface MessageCodec {
  encode(message: never): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
  fromJSON(json: unknown): unknown;
  toJSON(message: never): unknown;
  fromPartial(partial: never): unknown;
}

/**
 * A method as middleware see it (nice-grpc's descriptor: path, streaming shape, options) with the
 * codecs of its messages, so that whatever sends it needs no table of methods.
 */
export interface WireMethod extends MethodDescriptor {
  requestType: MessageCodec;
  responseType: MessageCodec;
  /** The generated options, with etcd's HTTP route and the SDK's since-version among the unknown fields. */
  options: MethodDescriptor["options"] & { _unknownFields?: Record<number, Uint8Array[]> };
}

/** Whether a middleware left the method of a call as the pipeline made it. */
export function isWireMethod(method: MethodDescriptor): method is WireMethod {
  return "requestType" in method && "responseType" in method;
}
