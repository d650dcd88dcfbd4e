import type { Client, CompatServiceDefinition } from "nice-grpc";
import type { ClientMiddleware, ClientMiddlewareCall, MethodDescriptor } from "nice-grpc-common";
import type { DeadlineOptions } from "nice-grpc-client-middleware-deadline";
import type { RetryOptions } from "nice-grpc-client-middleware-retry";
import { type Attempt, unaryResponse } from "../middleware/attempt.js";
import type { EndpointOption } from "../middleware/failover.js";

/** Options every RPC of the SDK can take on top of nice-grpc's own (signal, metadata). */
export type TransportCallOptions = DeadlineOptions & RetryOptions & EndpointOption;

/** The codec ts-proto generates for every message: binary, JSON and partial objects. */
export interface MessageCodec {
  encode(message: never): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
  fromJSON(json: unknown): unknown;
  toJSON(message: never): unknown;
  fromPartial(partial: never): unknown;
}

/** A method of a ts-proto generic service definition, as gen/ holds them. */
export interface GeneratedMethod {
  name: string;
  requestType: MessageCodec;
  responseType: MessageCodec;
  requestStream: boolean;
  responseStream: boolean;
  options: MethodDescriptor["options"] & { _unknownFields?: Record<number, Uint8Array[]> };
}

interface GeneratedService {
  fullName: string;
  methods: Record<string, GeneratedMethod>;
}

/** Every method of the services clients were made for, by gRPC path ("/etcdserverpb.KV/Range"). */
const methodsByPath = new Map<string, GeneratedMethod>();

/** The generated method behind a gRPC path, once a client for its service exists. */
export function methodAt(path: string): GeneratedMethod | undefined {
  return methodsByPath.get(path);
}

/** A method's binary codec as a gRPC wire takes it. */
export interface WireMethod {
  method: GeneratedMethod;
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Uint8Array) => unknown;
}

const wireMethods = new Map<string, WireMethod>();

/** The method behind a gRPC path with its binary codec, made once per method. */
export function wireMethodAt(path: string): WireMethod {
  let wireMethod = wireMethods.get(path);
  if (!wireMethod) {
    const method = methodAt(path);
    if (!method) throw new Error(`no generated method for ${path}`);
    const { requestType, responseType } = method;
    wireMethod = {
      method,
      // Requests come from the API as partial messages, which the encoder needs filled in.
      serialize: (value) => {
        const bytes = requestType.encode(requestType.fromPartial(value as never) as never).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      deserialize: (bytes) => responseType.decode(bytes),
    };
    wireMethods.set(path, wireMethod);
  }
  return wireMethod;
}

export type ServiceClient<D extends CompatServiceDefinition> = Client<D, TransportCallOptions>;

/** Makes the client of a service, with the middleware chain of whoever made the factory. */
export type ServiceFactory = <D extends CompatServiceDefinition>(definition: D) => ServiceClient<D>;

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
    private readonly defaults: (method: GeneratedMethod) => TransportCallOptions,
  ) {}

  /** The same chain with `outer` run before all of it. */
  with(outer: ClientMiddleware<TransportCallOptions>): MiddlewareChain {
    return new MiddlewareChain([outer, ...this.middleware], this.defaults);
  }

  /** The client of a service, one per definition. */
  client<D extends CompatServiceDefinition>(definition: D): ServiceClient<D> {
    let client = this.clients.get(definition);
    if (!client) {
      client = this.create(definition as unknown as GeneratedService);
      this.clients.set(definition, client);
    }
    return client as ServiceClient<D>;
  }

  private create(service: GeneratedService): Record<string, unknown> {
    const client: Record<string, unknown> = {};
    for (const [key, method] of Object.entries(service.methods)) {
      const descriptor: MethodDescriptor = {
        path: `/${service.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        options: method.options,
      };
      methodsByPath.set(descriptor.path, method);
      const defaults = this.defaults(method);
      const run = chainFor(this.middleware, descriptor);
      const start = (request: unknown, options: TransportCallOptions | undefined) => run(request, { ...defaults, ...options });
      client[key] = method.responseStream ? start : (request: unknown, options?: TransportCallOptions) => unaryResponse(start(request, options) as Attempt, descriptor.path);
    }
    return client;
  }
}
