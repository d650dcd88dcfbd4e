import {
  type Channel,
  type Client,
  type CompatServiceDefinition,
  type ClientFactory,
  createClient,
  createClientFactory,
} from "nice-grpc";
import { type DeadlineOptions, deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { type CallOptions, type ClientMiddleware, Status } from "nice-grpc-common";
import type { RetryOptions } from "nice-grpc-client-middleware-retry";
import { AuthDefinition } from "../gen/etcdserverpb/rpc.js";
import { authMiddleware, TokenSource } from "../middleware/auth.js";
import { errorMappingMiddleware, toEtcdError } from "../middleware/errors.js";
import { type EndpointOption, endpointOf, failoverMiddleware } from "../middleware/failover.js";
import { retryDefaults, retryMiddleware } from "../middleware/retry.js";
import type { Endpoint, ResolvedConfig } from "./config.js";
import { EndpointPool } from "./endpoints.js";
import { EndpointError } from "./errors.js";

/** Options every RPC of the SDK can take on top of nice-grpc's own (signal, metadata). */
export type TransportCallOptions = DeadlineOptions & RetryOptions & EndpointOption;

export type ServiceClient<D extends CompatServiceDefinition> = Client<D, TransportCallOptions>;

/** Makes the client of a service, with the middleware chain of whoever made the factory. */
export type ServiceFactory = <D extends CompatServiceDefinition>(definition: D) => ServiceClient<D>;

/**
 * What the client needs from a transport (gRPC here; etcd's JSON gateway later): typed service
 * clients behind one middleware chain, and the endpoints they reach.
 */
export interface Transport {
  service<D extends CompatServiceDefinition>(definition: D): ServiceClient<D>;
  /** Service clients with `middleware` run before (outside) the whole chain: a namespace, say. */
  withMiddleware(middleware: ClientMiddleware): ServiceFactory;
  /** host:port of every endpoint calls can go to. */
  readonly endpoints: string[];
  setEndpoints(endpoints: Endpoint[]): void;
  /** Resolves once a connection to etcd is up; rejects with EndpointError at the deadline. */
  ready(deadline: Date): Promise<void>;
  /** Gets an auth token now when credentials are configured, failing with their typed error. */
  authenticate(): Promise<void>;
  close(): void;
}

interface Route {
  definition: CompatServiceDefinition;
  method: string;
}

type AnyMethod = (request: unknown, options: CallOptions) => Promise<unknown> | AsyncIterable<unknown>;

/** Adds middleware so that the first in `list` runs first (nice-grpc runs the last added first). */
function useAll<F extends { use(m: ClientMiddleware): F }>(factory: F, list: ClientMiddleware[]): F {
  return [...list].reverse().reduce((f, m) => f.use(m), factory);
}

interface MethodInfo {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** The methods of a ts-proto generic definition, by the lower-camel key clients use. */
function methodsOf(definition: CompatServiceDefinition): [string, MethodInfo][] {
  const { fullName, methods } = definition as {
    fullName: string;
    methods: Record<string, { name: string; requestStream: boolean; responseStream: boolean }>;
  };
  return Object.entries(methods).map(([key, m]) => [
    key,
    { path: `/${fullName}/${m.name}`, requestStream: m.requestStream, responseStream: m.responseStream },
  ]);
}

/**
 * gRPC over @grpc/grpc-js for Node: one channel per endpoint and one middleware chain, outermost
 * first: error mapping, your outer middleware, deadline, auth, retry, your inner middleware, failover.
 */
export class GrpcTransport implements Transport {
  private readonly pool: EndpointPool;
  private readonly clients = new Map<CompatServiceDefinition, unknown>();
  private readonly routes = new Map<string, Route>();
  private readonly rawClients = new WeakMap<Channel, Map<CompatServiceDefinition, Record<string, AnyMethod>>>();
  private readonly factory: ClientFactory<TransportCallOptions>;
  private readonly tokens: TokenSource | undefined;

  constructor(private readonly config: ResolvedConfig) {
    this.pool = new EndpointPool(config);
    const failover = failoverMiddleware({
      pool: this.pool,
      dialTimeoutMs: config.dialTimeoutMs,
      dispatch: (channel, path, request, options) => this.dispatch(channel, path, request, options),
    });
    // Below auth: what Authenticate itself goes through.
    const base = useAll(createClientFactory().use(failover), config.middleware.inner).use(retryMiddleware);
    let factory = base;
    const { credentials } = config;
    if (credentials) {
      const authService = this.serviceFactory(base);
      const tokens = new TokenSource(async () => (await authService(AuthDefinition).authenticate(credentials)).token);
      this.tokens = tokens;
      factory = factory.use(authMiddleware({ tokens }));
    }
    factory = useAll(factory.use(deadlineMiddleware), config.middleware.outer);
    this.factory = factory.use(errorMappingMiddleware({ endpoint: (err) => endpointOf(err) ?? this.pool.current }));
  }

  /** The endpoints calls can go to, host:port. */
  get endpoints(): string[] {
    return this.pool.endpoints;
  }

  service<D extends CompatServiceDefinition>(definition: D): ServiceClient<D> {
    return this.serviceFrom(this.factory, definition, this.clients);
  }

  withMiddleware(middleware: ClientMiddleware): ServiceFactory {
    return this.serviceFactory(this.factory.use(middleware));
  }

  /** Service clients made by `factory`, one per definition. */
  private serviceFactory(factory: ClientFactory<TransportCallOptions>): ServiceFactory {
    const cache = new Map<CompatServiceDefinition, unknown>();
    return (definition) => this.serviceFrom(factory, definition, cache);
  }

  private serviceFrom<D extends CompatServiceDefinition>(
    factory: ClientFactory<TransportCallOptions>,
    definition: D,
    cache: Map<CompatServiceDefinition, unknown>,
  ): ServiceClient<D> {
    let client = cache.get(definition) as ServiceClient<D> | undefined;
    if (!client) {
      const defaults: Record<string, TransportCallOptions> = { "*": retryDefaults(this.config.retry) };
      for (const [method, m] of methodsOf(definition)) {
        this.routes.set(m.path, { definition, method });
        if (this.config.callTimeoutMs !== undefined && !m.requestStream && !m.responseStream) {
          defaults[method] = { deadline: this.config.callTimeoutMs };
        }
      }
      // The channel given here is never used: failover sends every attempt over an endpoint's own.
      client = factory.create(definition, this.pool.channel(this.pool.current)!, defaults as never) as ServiceClient<D>;
      cache.set(definition, client);
    }
    return client;
  }

  /** Sends one attempt over a channel, with no middleware (the chain above already ran). */
  private dispatch(channel: Channel, path: string, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> {
    const route = this.routes.get(path);
    if (!route) throw new Error(`no route for ${path}`);
    return this.rawClient(channel, route.definition)[route.method]!(request, options);
  }

  private rawClient(channel: Channel, definition: CompatServiceDefinition): Record<string, AnyMethod> {
    let perChannel = this.rawClients.get(channel);
    if (!perChannel) this.rawClients.set(channel, (perChannel = new Map()));
    let raw = perChannel.get(definition);
    if (!raw) perChannel.set(definition, (raw = createClient(definition, channel) as unknown as Record<string, AnyMethod>));
    return raw;
  }

  /** Replaces the endpoints calls can go to. */
  setEndpoints(endpoints: Endpoint[]): void {
    this.pool.setEndpoints(endpoints);
  }

  async authenticate(): Promise<void> {
    try {
      await this.tokens?.current();
    } catch (err) {
      throw toEtcdError(err, endpointOf(err) ?? this.pool.current, undefined);
    }
  }

  async ready(deadline: Date): Promise<void> {
    const endpoints = this.pool.endpoints;
    // Ready as soon as one endpoint is; an unreachable one must not hold up the others.
    const attempts = endpoints.map((e) => this.pool.connect(e, deadline).then((state) => (state === "ready" ? Promise.resolve() : Promise.reject(state))));
    if (await Promise.any(attempts).then(() => true, () => false)) return;
    throw new EndpointError(`could not connect to etcd at ${endpoints.join(", ")} before the dial timeout`, Status.UNAVAILABLE, endpoints[0]);
  }

  close(): void {
    this.pool.close();
  }
}
