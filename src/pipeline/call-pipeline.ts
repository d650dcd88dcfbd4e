import { deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { ClientError, type ClientMiddleware, Status } from "nice-grpc-common";
import { AuthDefinition } from "../../gen/etcdserverpb/rpc.js";
import { authMiddleware, TokenSource } from "../../middleware/auth.js";
import { errorMappingMiddleware, notEtcd, toEtcdError } from "../../middleware/errors.js";
import { WireFailure } from "../core/wire-failure.js";
import { endpointOf, failoverMiddleware, isProbeAnswer, PROBE, RECONNECT_PAUSE_MS, sleep } from "./failover.js";
import type { Wire } from "../wire/wire.js";
import { type Diagnostics, NO_DIAGNOSTICS } from "../core/diagnostics.js";
import { traced } from "./tracing.js";
import type { ConnectFailure } from "../wire/endpoints.js";
import { retryDefaults, retryMiddleware } from "../../middleware/retry.js";
import type { Endpoint, ResolvedConfig } from "../core/config.js";
import { EndpointError, InvalidArgumentError, TlsError } from "../core/errors.js";
import type { Secret } from "../core/secret.js";
import { MiddlewareChain, type ServiceFactory, type TransportCallOptions } from "./chain.js";

export type { ServiceClient, ServiceFactory, TransportCallOptions } from "./chain.js";
export type { Wire, WireLimits } from "../wire/wire.js";

/**
 * The Authenticate request as middleware see it: the codec reads `password` through the getter,
 * while a middleware that logs the request (inspect, JSON.stringify, a spread copy) sees only the
 * user name, since a prototype getter is no own property.
 */
class AuthenticateRequest {
  readonly #password: Secret<string>;

  constructor(
    readonly name: string,
    password: Secret<string>,
  ) {
    this.#password = password;
  }

  get password(): string {
    return this.#password.reveal();
  }
}

/**
 * The deadline middleware only for calls with a deadline; the others go straight on, without a
 * generator of their own. The levels below can ask whether the caller cancelled the call, so that
 * failover can tell a call that timed out on its endpoint from one its caller cancelled. The
 * answer comes from the caller's signal, not the clock: a timer may fire a millisecond before
 * Date.now() reaches the instant it was set for.
 */
const withDeadline = ((call, options) => {
  if (options.deadline == null) return call.next(call.request, options);
  const callerSignal = options.signal;
  const withCallerCancelled: TransportCallOptions = { ...options, callerCancelled: () => callerSignal?.aborted === true };
  return deadlineMiddleware(call, withCallerCancelled);
}) as ClientMiddleware<TransportCallOptions>;

/**
 * Typed service clients behind one middleware chain, outermost first: error mapping, your outer
 * middleware, deadline, auth, retry, your inner middleware, and failover, which sends each attempt
 * over the wire to the endpoint it picks.
 */
export class CallPipeline {
  private readonly chain: MiddlewareChain;
  private readonly tokens: TokenSource;

  constructor(
    config: ResolvedConfig,
    readonly wire: Wire,
    diagnostics: Diagnostics = NO_DIAGNOSTICS,
  ) {
    wire.endpoints.onHealthChange = (endpoint, healthy, error) => diagnostics.publish(healthy ? "endpointRecovered" : "endpointFailed", { endpoint, error });
    const failover = failoverMiddleware({ pool: wire.endpoints, dialTimeoutMs: config.dialTimeoutMs, send: traced(wire.send, diagnostics) });
    const streaming = (m: { requestStream: boolean; responseStream: boolean }) => m.requestStream || m.responseStream;
    const retry = retryDefaults(config.retry);
    const defaults = (method: { requestStream: boolean; responseStream: boolean }): TransportCallOptions =>
      config.callTimeoutMs !== undefined && !streaming(method) ? { ...retry, deadline: config.callTimeoutMs } : retry;
    // Below auth: what Authenticate itself goes through.
    const base: ClientMiddleware<TransportCallOptions>[] = [retryMiddleware, ...config.middleware.inner, failover];
    const { credentials } = config;
    let authenticate: (() => Promise<string>) | undefined;
    if (credentials) {
      const authService = new MiddlewareChain(base, defaults).client(AuthDefinition);
      const request = new AuthenticateRequest(credentials.name, credentials.password);
      authenticate = async () => (await authService.authenticate(request)).token;
    }
    this.tokens = new TokenSource(authenticate, config.token?.reveal(), () => diagnostics.publish("tokenRefreshed", {}));
    const errors = errorMappingMiddleware({ endpoint: (err) => endpointOf(err) ?? wire.endpoints.current });
    // A client without a token or credentials has no auth level at all: nothing per call.
    const auth = this.tokens.active ? [authMiddleware({ tokens: this.tokens })] : [];
    this.chain = new MiddlewareChain([errors, ...config.middleware.outer, withDeadline, ...auth, ...base], defaults);
  }

  /** The endpoints calls can go to, host:port. */
  get endpoints(): string[] {
    return this.wire.endpoints.endpoints;
  }

  service: ServiceFactory = (definition) => this.chain.client(definition);

  /** Service clients with `middleware` run before (outside) the whole chain: a namespace, say. */
  withMiddleware(middleware: ClientMiddleware<TransportCallOptions>): ServiceFactory {
    const chain = this.chain.with(middleware);
    return (definition) => chain.client(definition);
  }

  /** Replaces the endpoints calls can go to. */
  setEndpoints(endpoints: Endpoint[]): void {
    this.wire.endpoints.setEndpoints(endpoints);
  }

  /** Replaces the auth token calls send from now on. */
  setToken(token: string): void {
    if (!this.tokens.active) throw new InvalidArgumentError("token", "can be replaced only on a client created with a token or with credentials");
    this.tokens.replace(token);
  }

  /** Gets an auth token now when credentials are configured, failing with their typed error. */
  async authenticate(): Promise<void> {
    if (!this.tokens.renewable) return;
    try {
      await this.tokens.current();
    } catch (err) {
      throw toEtcdError(err, endpointOf(err) ?? this.wire.endpoints.current, undefined);
    }
  }

  /**
   * Resolves once a connection to etcd is up. Each endpoint is tried until the deadline, so that a
   * member that starts listening a moment later (a process started beside it) is waited for, as
   * clientv3's DialTimeout does. A TLS failure ends the wait at once, as waiting does not mend it:
   * it rejects with TlsError, and with EndpointError naming why each endpoint failed at the deadline.
   */
  async ready(deadline: Date): Promise<void> {
    const { endpoints } = this;
    const pool = this.wire.endpoints;
    let connected = false;
    const untilConnected = async (endpoint: string): Promise<void> => {
      for (;;) {
        const outcome = await pool.connect(endpoint, deadline);
        const lost = outcome === "ready" ? await this.probe(endpoint) : undefined;
        if (outcome === "ready" && lost === undefined) {
          connected = true;
          return;
        }
        const failure = outcome === "failed" ? await pool.connectFailure(endpoint) : lost;
        if (failure?.tls) throw new TlsError(`TLS connection to etcd at ${endpoint} failed: ${failure.message}`, Status.UNAVAILABLE, endpoint, { noneReachable: true });
        const left = deadline.getTime() - Date.now();
        if (outcome === "timeout" || left <= 0 || connected) {
          throw new EndpointError(`${endpoint}: ${failure?.message ?? "did not answer"}`, Status.UNAVAILABLE, endpoint, { noneReachable: true });
        }
        await sleep(Math.min(left, RECONNECT_PAUSE_MS));
      }
    };
    // Ready as soon as one endpoint is; an unreachable one must not hold up the others.
    try {
      await Promise.any(endpoints.map(untilConnected));
    } catch (err) {
      const failures = (err as AggregateError).errors as EndpointError[];
      const tls = failures.find((failure) => failure instanceof TlsError);
      if (tls) throw tls;
      // Everything that answered was not etcd: that, not a dial timeout, is what to say.
      if (failures.every((failure) => !failure.noneReachable)) throw failures[0];
      const reasons = failures.map((failure) => failure.message).join("; ");
      throw new EndpointError(`could not connect to etcd at ${endpoints.join(", ")} before the dial timeout (${reasons})`, Status.UNAVAILABLE, endpoints[0], { noneReachable: true });
    } finally {
      connected = true;
    }
  }

  /**
   * Checks that what listens at `endpoint` is etcd: a Range without a key, which etcd refuses with
   * its own error before it looks at auth or data, so it changes nothing and needs no credentials.
   * Anything else that answers (an HTTP/2 server, a gRPC server without etcd's services) is an
   * EndpointError; a connection lost meanwhile comes back as the failure to wait out.
   */
  private async probe(endpoint: string): Promise<ConnectFailure | undefined> {
    const answer = await Promise.resolve(this.wire.send(endpoint, PROBE, {}, {})).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (isProbeAnswer(answer)) return undefined;
    if (answer instanceof WireFailure && answer.delivery !== "answered") return { message: answer.details, tls: answer.tls };
    if (answer instanceof ClientError) throw notEtcd(endpoint, answer);
    throw new EndpointError(`${endpoint} is not an etcd server: it accepted a Range without a key`, Status.UNAVAILABLE, endpoint, { noneReachable: true });
  }

  close(): Promise<void> {
    return this.wire.close();
  }
}
