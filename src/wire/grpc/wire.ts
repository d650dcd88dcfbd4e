import { type ClientDuplexStream, type ClientReadableStream, Client as GrpcClient, Metadata as GrpcMetadata, type ServiceError } from "@grpc/grpc-js";
import type { Channel } from "nice-grpc";
import { type CallOptions, type Metadata, Status } from "nice-grpc-common";
import { once } from "node:events";
import type { ResolvedConfig } from "../../core/config.js";
import { GrpcEndpointPool, type LoseCall } from "./channels.js";
import { WireFailure } from "../../core/wire-failure.js";
import { deliveryOfGrpcStatus } from "./grpc-js-status.js";
import { binaryCodec } from "../binary-codec.js";
import { abortError, sendRequests, StreamCall } from "../stream-call.js";
import type { Wire, WireLimits, WireMethod } from "../wire.js";

function grpcMetadata(metadata: Metadata | undefined): GrpcMetadata {
  const converted = new GrpcMetadata();
  if (metadata) for (const [key, values] of metadata) for (const value of values) converted.add(key, typeof value === "string" ? value : Buffer.from(value));
  return converted;
}

/**
 * A failed call's grpc-js status as a WireFailure. grpc-js can also fail a call with a status it
 * left empty (a message flagged compressed by a server that named no compression): that is an
 * answer it could not read.
 */
function wireFailure(err: unknown, path: string): WireFailure {
  const status = err as Partial<ServiceError>;
  if (typeof status.code !== "number" || typeof status.details !== "string") {
    return new WireFailure(path, Status.INTERNAL, `grpc-js failed the call without a status: ${err instanceof Error ? err.message : String(err)}`, "answered");
  }
  const { delivery, ...detail } = deliveryOfGrpcStatus(status.code, status.details);
  return new WireFailure(path, status.code, status.details, delivery, detail);
}

/** What a call in flight fails with when its endpoint stopped answering. */
function lostCall(path: string, why: string): WireFailure {
  return new WireFailure(path, Status.UNAVAILABLE, why, "sent-and-lost");
}

/** A grpc-js streaming call's messages, read through a StreamCall. */
function streamCall(call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>, path: string, signal: AbortSignal | undefined, inFlight: Set<LoseCall>): StreamCall {
  const responses = new StreamCall(call, signal);
  const lose: LoseCall = (why) => responses.fail(lostCall(path, why));
  inFlight.add(lose);
  call.on("data", (message: unknown) => responses.push(message));
  call.on("error", (err: unknown) => {
    inFlight.delete(lose);
    responses.error(wireFailure(err, path));
  });
  call.on("end", () => {
    inFlight.delete(lose);
    responses.end();
  });
  return responses;
}

/**
 * gRPC over @grpc/grpc-js, for Node: one channel per endpoint. Calls go straight to grpc-js with
 * the generated codecs; the middleware chain above has done what nice-grpc's per-call wrapper
 * would.
 */
export class GrpcWire implements Wire {
  readonly endpoints: GrpcEndpointPool;
  readonly limits: WireLimits = { streamRequests: undefined };
  private readonly grpcClients = new WeakMap<Channel, GrpcClient>();

  constructor(config: ResolvedConfig) {
    this.endpoints = new GrpcEndpointPool(config);
  }

  send = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const connection = this.endpoints.connection(endpoint);
    if (!connection) return undefined;
    const { channel, inFlight } = connection;
    const { path } = method;
    const { serialize, deserialize } = binaryCodec(method);
    const client = this.client(channel);
    const { signal, metadata } = options;
    if (method.requestStream) {
      const call = client.makeBidiStreamRequest(path, serialize, deserialize, grpcMetadata(metadata));
      const responses = streamCall(call, path, signal, inFlight);
      const sink = { write: (message: unknown) => call.write(message), drained: () => once(call, "drain"), end: () => call.end() };
      void sendRequests(request as AsyncIterable<unknown>, sink, responses);
      return responses;
    }
    if (method.responseStream) return streamCall(client.makeServerStreamRequest(path, serialize, deserialize, request, grpcMetadata(metadata)), path, signal, inFlight);
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        inFlight.delete(lose);
      };
      const fail = (failure: Error) => {
        done();
        call.cancel();
        reject(failure);
      };
      const onAbort = () => fail(abortError());
      const lose: LoseCall = (why) => fail(lostCall(path, why));
      inFlight.add(lose);
      const call = client.makeUnaryRequest(path, serialize, deserialize, request, grpcMetadata(metadata), (err: ServiceError | null, response) => {
        done();
        if (err) reject(wireFailure(err, path));
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

  close(): Promise<void> {
    return this.endpoints.close();
  }
}
