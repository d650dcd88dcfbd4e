import type { Client, CompatServiceDefinition } from "nice-grpc";
import type { ClientMiddleware, ClientMiddlewareCall, MethodDescriptor } from "nice-grpc-common";
import type { DeadlineOptions } from "nice-grpc-client-middleware-deadline";
import type { RetryOptions } from "nice-grpc-client-middleware-retry";
import { type Attempt, unaryResponse } from "../core/attempt.js";
import type { EndpointOption } from "./failover.js";
import type { WireMethod } from "../wire/wire.js";

/** Options every RPC of the SDK can take on top of nice-grpc's own (signal, metadata). */
export type TransportCallOptions = DeadlineOptions & RetryOptions & EndpointOption;

/** A service as gen/ defines it: ts-proto's generic definition, methods with their codecs. */
interface GeneratedService {
  fullName: string;
  methods: Record<string, Omit<WireMethod, "path"> & { name: string }>;
}

export type ServiceClient<D extends CompatServiceDefinition> = Client<D, TransportCallOptions>;

/** Makes the client of a service, with the middleware chain of whoever made the factory. */
export type ServiceFactory = <D extends CompatServiceDefinition>(definition: D) => ServiceClient<D>;

/**
 * The methods of a generated service by their client names, each as middleware see it: the
 * descriptor carries the codecs, which the wire below uses to send the call.
 */
export function wireMethods(definition: CompatServiceDefinition): Record<string, WireMethod> {
  const service = definition as unknown as GeneratedService;
  return Object.fromEntries(
    Object.entries(service.methods).map(([key, method]) => [
      key,
      {
        path: `/${service.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        options: method.options,
        requestType: method.requestType,
        responseType: method.responseType,
      },
    ]),
  );
}

/** The innermost middleware answers every call itself; nothing lies below it. */
function endOfChain(): never {
  throw new Error("the innermost middleware must send the call itself");
}

type Level = (request: unknown, options: TransportCallOptions) => AsyncGenerator<unknown, unknown, undefined>;

/**
 * The chain for one method, run from its outermost level: each level runs its middleware with a
 * call whose `next` is the level inside it. nice-grpc-common's composeClientMiddleware does the
 * same with two copies of the call per level and call (Object.assign of whatever the call
 * holds): profiled, that was a third of the chain's CPU per call. Here the levels are made once
 * per method, and a call makes one call object of a fixed shape per level.
 */
function chainFor(chain: readonly ClientMiddleware<TransportCallOptions>[], method: MethodDescriptor): Level {
  return chain.reduceRight<Level>(
    (inner, middleware) => (request, options) =>
      middleware({ method, requestStream: method.requestStream, request, responseStream: method.responseStream, next: inner } as ClientMiddlewareCall<unknown, unknown>, options),
    endOfChain,
  );
}

/**
 * Service clients whose calls run through a chain of nice-grpc client middleware, the innermost
 * of which sends them (the failover middleware, over whichever wire the transport has). This is
 * what nice-grpc's client factory does, without tying clients to a grpc-js channel, so that the
 * same chain serves gRPC and etcd's HTTP gateway alike.
 */
export class MiddlewareChain {
  private readonly clients = new Map<CompatServiceDefinition, unknown>();

  /**
   * @param middleware outermost first; the last one must answer calls without calling `next`.
   * @param defaults the options every call of a method starts from.
   */
  constructor(
    private readonly middleware: ClientMiddleware<TransportCallOptions>[],
    private readonly defaults: (method: WireMethod) => TransportCallOptions,
  ) {}

  /** The same chain with `outer` run before all of it. */
  with(outer: ClientMiddleware<TransportCallOptions>): MiddlewareChain {
    return new MiddlewareChain([outer, ...this.middleware], this.defaults);
  }

  /** The client of a service, one per definition. */
  client<D extends CompatServiceDefinition>(definition: D): ServiceClient<D> {
    let client = this.clients.get(definition);
    if (!client) {
      client = this.create(definition);
      this.clients.set(definition, client);
    }
    return client as ServiceClient<D>;
  }

  private create(definition: CompatServiceDefinition): Record<string, unknown> {
    const client: Record<string, unknown> = {};
    for (const [key, descriptor] of Object.entries(wireMethods(definition))) {
      const defaults = this.defaults(descriptor);
      const run = chainFor(this.middleware, descriptor);
      const start = (request: unknown, options: TransportCallOptions | undefined) => run(request, { ...defaults, ...options });
      client[key] = descriptor.responseStream ? start : (request: unknown, options?: TransportCallOptions) => unaryResponse(start(request, options) as Attempt, descriptor.path);
    }
    return client;
  }
}
