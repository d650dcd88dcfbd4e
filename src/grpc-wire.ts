import { Client as GrpcClient, Metadata as GrpcMetadata, type ServiceError } from "@grpc/grpc-js";
import { type Channel, type CompatServiceDefinition, createClient } from "nice-grpc";
import { type CallOptions, ClientError } from "nice-grpc-common";
import type { ResolvedConfig } from "./config.js";
import { EndpointPool } from "./endpoints.js";
import { type GeneratedMethod, methodAt } from "./service-client.js";
import type { Wire, WireLimits } from "./transport.js";

type StreamMethod = (request: unknown, options: CallOptions) => AsyncIterable<unknown>;

/** What an aborted call fails with, as nice-grpc's own calls do (the middleware above knows it). */
function abortError(): Error {
  return Object.assign(new Error("The operation has been aborted"), { name: "AbortError" });
}

/**
 * gRPC over @grpc/grpc-js, for Node: one channel per endpoint. Unary calls, nearly all of the
 * traffic, go straight to grpc-js with the generated codecs; the middleware chain above has done
 * what nice-grpc's per-call wrapper would. Streams use plain nice-grpc clients.
 */
export class GrpcWire implements Wire {
  readonly endpoints: EndpointPool;
  readonly limits: WireLimits = { streamRequests: undefined };
  private readonly grpcClients = new WeakMap<Channel, GrpcClient>();
  /** Plain nice-grpc stream methods per channel, by gRPC path. */
  private readonly streams = new WeakMap<Channel, Map<string, StreamMethod>>();
  /** Codecs of unary methods as grpc-js takes them, by gRPC path. */
  private readonly codecs = new Map<string, { serialize: (value: unknown) => Buffer; deserialize: (bytes: Buffer) => unknown }>();

  constructor(config: ResolvedConfig) {
    this.endpoints = new EndpointPool(config);
  }

  send = (endpoint: string, path: string, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const channel = this.endpoints.channel(endpoint);
    if (!channel) return undefined;
    const method = methodAt(path);
    if (!method) throw new Error(`no generated method for ${path}`);
    if (method.requestStream || method.responseStream) return this.streamMethod(channel, path, method)(request, options);
    return this.unary(channel, path, method, request, options);
  };

  private unary(channel: Channel, path: string, method: GeneratedMethod, request: unknown, { signal, metadata }: CallOptions): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(abortError());
    const codec = this.codec(path, method);
    let client = this.grpcClients.get(channel);
    if (!client) this.grpcClients.set(channel, (client = new GrpcClient("", null as never, { channelOverride: channel })));
    const grpcMetadata = new GrpcMetadata();
    if (metadata) for (const [key, values] of metadata) for (const value of values) grpcMetadata.add(key, typeof value === "string" ? value : Buffer.from(value));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        call.cancel();
        reject(abortError());
      };
      const call = client.makeUnaryRequest(path, codec.serialize, codec.deserialize, request, grpcMetadata, (err: ServiceError | null, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(new ClientError(path, err.code, err.details));
        else resolve(response);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private codec(path: string, method: GeneratedMethod) {
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

  private streamMethod(channel: Channel, path: string, method: GeneratedMethod): StreamMethod {
    let perChannel = this.streams.get(channel);
    if (!perChannel) this.streams.set(channel, (perChannel = new Map()));
    let stream = perChannel.get(path);
    if (!stream) {
      // A one-method service, so that each path gets a client of its own without a lookup by name.
      const [, fullName] = /^\/(.*)\/[^/]+$/.exec(path)!;
      const definition = { name: method.name, fullName, methods: { call: method } } as unknown as CompatServiceDefinition;
      stream = (createClient(definition, channel) as unknown as Record<string, StreamMethod>).call!;
      perChannel.set(path, stream);
    }
    return stream;
  }

  close(): void {
    this.endpoints.close();
  }
}
