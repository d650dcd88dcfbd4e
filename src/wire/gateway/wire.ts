import { type CallOptions, ClientError, Status } from "nice-grpc-common";
import { WireFailure } from "../../core/wire-failure.js";
import type { DeepPartial, WatchRequest, WatchResponse } from "../../../gen/etcdserverpb/rpc.js";
import { gatewayPath, methodSince } from "../../core/annotations.js";
import type { Endpoint, ResolvedConfig } from "../../core/config.js";
import { type ConnectFailure, type ConnectOutcome, EndpointRotation, type EndpointSlot } from "../endpoints.js";
import { isTlsErrorCode } from "../tls-failure.js";
import { ClientClosedError, EtcdError, InvalidArgumentError, UnsupportedByTransportError } from "../../core/errors.js";
import type { Wire, WireLimits, WireMethod } from "../wire.js";
import { boundedText, httpError, requestJson, responseFromJson, streamedResults } from "./json.js";
import { type Batching, batchedRequests, watchOverGateway } from "./streams.js";
import { unref } from "../../core/timers.js";

const WATCH_PATH = "/etcdserverpb.Watch/Watch";

/** The most of an error body read: enough for any status etcd words, not a server's whole page. */
const ERROR_BODY_BYTES = 64 * 1024;
/** The most of a /version answer read: etcd's is under 100 bytes. */
const VERSION_BYTES = 4 * 1024;

/**
 * Renewals share HTTP requests: Node's fetch costs ~0.7 ms of CPU a request, and the gateway
 * serves ~1,100 requests a second on 2 cores, where 10k leases of TTL 15 s need 2,000 renewals a
 * second. A body within the 512 bytes the gateway reads at once (17 renewals) is never cut short
 * (see batchedRequests). Renewals are due a third of a TTL early, so 100 ms of gathering costs
 * nothing; a lone renewal, keepAliveOnce or a keep-alive's first, still goes at once.
 */
const KEEPALIVE_BATCHING: Batching = { inFlight: 4, bodyBytes: 512, spacingMs: 100 };

interface GatewaySlot extends EndpointSlot {
  /** Why the last probe failed, until one succeeds. */
  failure: ConnectFailure | undefined;
  /** scheme://host:port */
  origin: string;
  /** Whether the endpoint answered lately; until it has, a call first checks that it answers. */
  reachable: boolean;
  /** Calls in flight to the endpoint, with their gRPC paths: ended if it stops answering. */
  calls: Map<AbortController, string>;
  heartbeat: ReturnType<typeof setTimeout> | undefined;
}

/** Causes of a failed fetch that prove the request never left: nothing was listening, no route. */
const NEVER_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/**
 * A fetch that failed without an HTTP answer, as the gRPC status grpc-js would give it. Only
 * Node says why; a browser's "Failed to fetch" could have happened after the request was sent.
 */
function fetchFailure(err: unknown, call: GatewayCall, signal: AbortSignal): unknown {
  // An aborted call fails with the abort's reason, which the middleware above recognises.
  if (signal.aborted || !(err instanceof Error) || err instanceof ClientError || err instanceof EtcdError) return err;
  const { path, endpoint } = call;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.message ? `${err.message}: ${cause.message}` : err.message;
  if (cause?.code && NEVER_CONNECTED.has(cause.code)) return new WireFailure(path, Status.UNAVAILABLE, `no connection to ${endpoint}: ${reason}`, "never-sent");
  // Node's fetch says why a TLS connection failed; nothing was sent over it.
  if (isTlsErrorCode(cause?.code)) return new WireFailure(path, Status.UNAVAILABLE, `no TLS connection to ${endpoint}: ${reason}`, "never-sent", { tls: true });
  return new WireFailure(path, Status.UNAVAILABLE, `connection to ${endpoint} failed: ${reason}`, "sent-and-lost");
}

/**
 * The gateway's endpoints. HTTP has no keepalive pings, so while calls are in flight to an
 * endpoint it is asked for its version every keepAliveTimeMs, as gRPC would ping it; with no
 * answer within keepAliveTimeoutMs (a frozen member, a dead link) its calls fail with Unavailable
 * and move elsewhere, as they would on gRPC.
 */
class GatewayEndpoints extends EndpointRotation<GatewaySlot> {
  constructor(
    private readonly config: ResolvedConfig,
    private readonly closing: AbortSignal,
  ) {
    super();
    this.setEndpoints(config.endpoints);
  }

  origin(address: string): string | undefined {
    return this.slot(address)?.origin;
  }

  protected open(endpoint: Endpoint): GatewaySlot {
    const origin = `${endpoint.secure ? "https" : "http"}://${endpoint.address}`;
    return { endpoint, origin, reachable: false, failure: undefined, quarantinedUntil: 0, calls: new Map(), heartbeat: undefined };
  }

  /** Stops watching the endpoint; fetch pools connections itself, so nothing else is held. */
  protected release(slot: GatewaySlot): void {
    clearTimeout(slot.heartbeat);
    slot.heartbeat = undefined;
  }

  /** Registers a call in flight; the controller aborts it if the endpoint stops answering. */
  begin(address: string, path: string): AbortController {
    const controller = new AbortController();
    const slot = this.slot(address);
    if (slot) {
      slot.calls.set(controller, path);
      if (!slot.heartbeat) this.scheduleHeartbeat(slot);
    }
    return controller;
  }

  end(address: string, controller: AbortController): void {
    this.slot(address)?.calls.delete(controller);
  }

  private scheduleHeartbeat(slot: GatewaySlot): void {
    slot.heartbeat = setTimeout(async () => {
      if (slot.calls.size === 0 || this.closing.aborted) {
        slot.heartbeat = undefined;
        return;
      }
      const outcome = await this.probe(slot, Date.now() + this.config.keepAliveTimeoutMs);
      if (outcome !== "ready" && !this.closing.aborted) {
        const why = `${slot.endpoint.address} did not answer a keepalive probe within ${this.config.keepAliveTimeoutMs} ms`;
        this.abandon(slot, why);
        this.markFailed(slot.endpoint.address, new Error(why));
      }
      if (this.slot(slot.endpoint.address) === slot) this.scheduleHeartbeat(slot);
      else slot.heartbeat = undefined;
    }, this.config.keepAliveTimeMs);
    unref(slot.heartbeat);
  }

  /** Ends the calls in flight; fetch drops the connection of an aborted request itself. */
  protected abandon(slot: GatewaySlot, why: string): void {
    for (const [call, path] of slot.calls) call.abort(new WireFailure(path, Status.UNAVAILABLE, why, "sent-and-lost"));
    slot.calls.clear();
  }

  protected down(): boolean {
    return false;
  }

  isReady(address: string): boolean {
    return this.slot(address)?.reachable ?? false;
  }

  override markFailed(address: string, error?: unknown): void {
    super.markFailed(address, error);
    const slot = this.slot(address);
    if (slot) slot.reachable = false;
  }

  override markHealthy(address: string): void {
    super.markHealthy(address);
    const slot = this.slot(address);
    if (slot) slot.reachable = true;
  }

  protected dial(slot: GatewaySlot, deadline: Date): Promise<ConnectOutcome> {
    return this.probe(slot, deadline.getTime());
  }

  /** Asks the endpoint for its version: a frozen member never answers, a dead one refuses. */
  private async probe(slot: GatewaySlot, deadline: number): Promise<ConnectOutcome> {
    const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    try {
      const response = await fetch(`${slot.origin}/version`, { signal: AbortSignal.any([timeout, this.closing]), redirect: "manual" });
      const version = await boundedText(response.body, { limit: VERSION_BYTES, tooLarge: () => new Error("not etcd's version answer") })
        .then((text) => JSON.parse(text) as { etcdserver?: unknown } | null)
        .catch(() => undefined);
      // Any web server answers; only etcd says which etcd it is.
      slot.reachable = response.ok && typeof version?.etcdserver === "string";
      slot.failure = slot.reachable ? undefined : { message: `${slot.endpoint.address} answered, but is not an etcd gateway (HTTP ${response.status})`, tls: false };
      return slot.reachable ? "ready" : "failed";
    } catch (err) {
      if (timeout.aborted) return "timeout";
      const cause = (err as { cause?: { code?: unknown; message?: string } }).cause;
      slot.failure = { message: cause?.message ?? (err instanceof Error ? err.message : String(err)), tls: isTlsErrorCode(cause?.code) };
      return "failed";
    }
  }

  override connectFailure(address: string): Promise<ConnectFailure | undefined> {
    return Promise.resolve(this.slot(address)?.failure);
  }
}

/**
 * etcd's HTTP/JSON gateway over `fetch`, for browsers and edge runtimes: each RPC is a POST to its
 * route from proto/ with the request as JSON; streams come back as lines of JSON. The auth token
 * goes in the Authorization header, the only one etcd's CORS policy lets a page send besides
 * Content-Type, so no other metadata is sent (a watch does not ask for `hasleader`).
 */
export class GatewayWire implements Wire {
  readonly endpoints: GatewayEndpoints;
  readonly limits: WireLimits = { streamRequests: "etcd's HTTP gateway reads a request body to its end before it answers" };
  private readonly closing = new AbortController();

  constructor(private readonly config: ResolvedConfig) {
    const { tls } = config;
    if (tls && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined || tls.serverName !== undefined)) {
      throw new InvalidArgumentError("tls", "cannot be used with the gateway transport: fetch trusts the platform's CA store and has no client certificates");
    }
    if (config.endpoints.some((e) => e.socketPath !== undefined)) {
      throw new InvalidArgumentError("endpoints", "unix:// endpoints need the grpc or http2 transport: fetch cannot reach a unix socket");
    }
    this.endpoints = new GatewayEndpoints(config, this.closing.signal);
  }

  send = (endpoint: string, method: WireMethod, request: unknown, options: CallOptions): Promise<unknown> | AsyncIterable<unknown> | undefined => {
    const origin = this.endpoints.origin(endpoint);
    if (origin === undefined) return undefined;
    const { path } = method;
    const route = gatewayPath(method.options);
    if (!route) throw new UnsupportedByTransportError(`${path} has no route on etcd's HTTP gateway`);
    const call = { url: origin + route, path, endpoint, method };
    if (!method.requestStream) {
      return method.responseStream ? this.stream(call, () => this.json(call, request), options) : this.unary(call, request, options);
    }
    const requests = request as AsyncIterable<unknown>;
    if (path !== WATCH_PATH) {
      const open = (body: string, signal: AbortSignal) => this.stream(call, () => body, { ...options, signal });
      return batchedRequests(requests, (message) => this.json(call, message), open, KEEPALIVE_BATCHING, options.signal, path);
    }
    const openWatch = (message: DeepPartial<WatchRequest>, signal: AbortSignal) => this.stream(call, () => this.json(call, message), { ...options, signal }) as AsyncIterable<WatchResponse>;
    return watchOverGateway(requests as AsyncIterable<DeepPartial<WatchRequest>>, openWatch, options.signal, path);
  };

  /**
   * A call in flight to its endpoint, ended by the caller's signal, by close(), or when the
   * endpoint stops answering; `done` ends the endpoint's watch over it.
   */
  private begin(call: GatewayCall, options: CallOptions): { signal: AbortSignal; done: () => void } {
    const watchdog = this.endpoints.begin(call.endpoint, call.path);
    const signal = AbortSignal.any([watchdog.signal, this.closing.signal, ...(options.signal ? [options.signal] : [])]);
    return { signal, done: () => this.endpoints.end(call.endpoint, watchdog) };
  }

  /** A request message as JSON, within the size limit of a message. */
  private json(call: GatewayCall, request: unknown): string {
    const json = requestJson(call.method.requestType, request);
    if (json.length > this.config.maxCallSendMsgSize) {
      const details = `the request of ${json.length} bytes of JSON is over the limit of ${this.config.maxCallSendMsgSize}`;
      throw new WireFailure(call.path, Status.RESOURCE_EXHAUSTED, details, "never-sent", { sizeLimit: "send" });
    }
    return json;
  }

  private async post(call: GatewayCall, body: string, signal: AbortSignal, token: string | undefined): Promise<Response> {
    // No Content-Type: the gateway takes any, and a text/plain POST without a token is a "simple"
    // cross-origin request, which a browser sends without a CORS preflight round trip.
    const headers: Record<string, string> = token ? { authorization: token } : {};
    // A redirect is never followed: etcd does not send one, and following it would replay the
    // request (an Authenticate body with its password, say) to wherever it points.
    const response = await fetch(call.url, { method: "POST", body, headers, signal, redirect: "manual" });
    if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
      const to = response.headers.get("location");
      throw new WireFailure(call.path, Status.UNAVAILABLE, `${call.endpoint} answered with a redirect${to ? ` to ${to}` : ""}, which the client does not follow: it is not an etcd gateway`, "never-sent");
    }
    if (!response.ok) {
      const text = await boundedText(response.body, { limit: ERROR_BODY_BYTES, tooLarge: () => this.tooLarge(call, "an error body", ERROR_BODY_BYTES) });
      const error = httpError(call.path, response.status, text);
      // A route missing from an older gateway (3.4 has no /v3/maintenance/hashkv) for a method the
      // server has over gRPC: the transport's shortcoming, not the server's version.
      if (error.code === Status.UNIMPLEMENTED && response.status === 404 && !methodSince(call.method.options)) {
        throw new UnsupportedByTransportError(`${call.path}: the gateway of etcd at ${call.endpoint} has no route ${new URL(call.url).pathname}`, { cause: error });
      }
      throw error;
    }
    return response;
  }

  private async unary(call: GatewayCall, request: unknown, options: CallOptions): Promise<unknown> {
    if (options.metadata?.has("hasleader")) {
      throw new UnsupportedByTransportError(`${call.path} with requireLeader: etcd's HTTP gateway takes no gRPC metadata from a browser`);
    }
    const { signal, done } = this.begin(call, options);
    let text: string;
    try {
      const response = await this.post(call, this.json(call, request), signal, options.metadata?.get("token"));
      text = await boundedText(response.body, this.receiveBound(call));
    } catch (err) {
      throw fetchFailure(err, call, signal);
    } finally {
      done();
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // Nothing was applied by a server that is not etcd: as gRPC, a call elsewhere may follow.
      throw new WireFailure(call.path, Status.UNAVAILABLE, `${call.endpoint} is not an etcd gateway, it answered ${JSON.stringify(text.slice(0, 60))}`, "never-sent");
    }
    return responseFromJson(call.method.responseType, json, call.path);
  }

  /** A response within maxCallRecvMsgSize: for a stream, each of its lines. */
  private receiveBound(call: GatewayCall) {
    const limit = this.config.maxCallRecvMsgSize;
    return { limit, tooLarge: (bytes: number) => this.tooLarge(call, `a response of over ${bytes} bytes`, limit) };
  }

  private tooLarge(call: GatewayCall, what: string, limit: number): WireFailure {
    return new WireFailure(call.path, Status.RESOURCE_EXHAUSTED, `received ${what}, over the limit of ${limit}`, "answered", { sizeLimit: "receive" });
  }

  /** A streamed response; `body` is made once the call has begun, so that its errors are the stream's. */
  private async *stream(call: GatewayCall, body: () => string, options: CallOptions): AsyncGenerator<unknown, void, undefined> {
    const { signal, done } = this.begin(call, options);
    try {
      const response = await this.post(call, body(), signal, options.metadata?.get("token"));
      if (!response.body) throw new WireFailure(call.path, Status.INTERNAL, "the gateway answered a stream without a body", "answered");
      for await (const json of streamedResults(response.body, call.path, this.receiveBound(call))) yield responseFromJson(call.method.responseType, json, call.path);
    } catch (err) {
      throw fetchFailure(err, call, signal);
    } finally {
      done();
    }
  }

  /** Ends every call; fetch keeps its own pool of connections, which it closes when idle. */
  close(): Promise<void> {
    this.closing.abort(new ClientClosedError());
    return this.endpoints.close();
  }
}

interface GatewayCall {
  url: string;
  path: string;
  endpoint: string;
  method: WireMethod;
}
