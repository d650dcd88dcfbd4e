import { type Channel, type CompatServiceDefinition, createClient } from "nice-grpc";
import type { CallOptions } from "nice-grpc-common";
import type { ResolvedConfig } from "./config.js";
import { EndpointPool } from "./endpoints.js";
import { methodAt } from "./service-client.js";
import type { Wire, WireLimits } from "./transport.js";

type AnyMethod = (request: unknown, options: CallOptions) => Promise<unknown> | AsyncIterable<unknown>;

/** gRPC over @grpc/grpc-js, for Node: one channel per endpoint. */
export class GrpcWire implements Wire {
  readonly endpoints: EndpointPool;
  readonly limits: WireLimits = { streamRequests: undefined };
  /** Plain nice-grpc clients (no middleware) per channel, by gRPC path. */
  private readonly methods = new WeakMap<Channel, Map<string, AnyMethod>>();

  constructor(config: ResolvedConfig) {
    this.endpoints = new EndpointPool(config);
  }

  send = (endpoint: string, path: string, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const channel = this.endpoints.channel(endpoint);
    return channel && this.method(channel, path)(request, options);
  };

  private method(channel: Channel, path: string): AnyMethod {
    let perChannel = this.methods.get(channel);
    if (!perChannel) this.methods.set(channel, (perChannel = new Map()));
    let method = perChannel.get(path);
    if (!method) {
      const generated = methodAt(path);
      if (!generated) throw new Error(`no generated method for ${path}`);
      // A one-method service, so that each path gets a client of its own without a lookup by name.
      const [, fullName] = /^\/(.*)\/[^/]+$/.exec(path)!;
      const definition = { name: generated.name, fullName, methods: { call: generated } } as unknown as CompatServiceDefinition;
      method = (createClient(definition, channel) as unknown as Record<string, AnyMethod>).call!;
      perChannel.set(path, method);
    }
    return method;
  }

  close(): void {
    this.endpoints.close();
  }
}
