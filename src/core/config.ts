import type { ClientMiddleware } from "nice-grpc-common";
import { InvalidArgumentError } from "./errors.js";
import { Secret, withoutUserInfo } from "./secret.js";
import type { Logger } from "./diagnostics.js";

/** TLS material: PEM text or bytes. Giving `cert` and `key` turns on mutual TLS. */
export interface TlsConfig {
  /** CA certificates that sign the server's certificate; the system roots when absent. */
  ca?: string | Uint8Array;
  /** Client certificate chain, for mutual TLS. */
  cert?: string | Uint8Array;
  /** Private key of the client certificate, for mutual TLS. */
  key?: string | Uint8Array;
  /** Name to check the server's certificate against, when it differs from the endpoint host. */
  serverName?: string;
}

/** How calls that change nothing on the server are retried; modelled on clientv3's retry policy. */
export interface RetryPolicy {
  /** Retries after the first attempt. Default 10; 0 turns retries off. */
  maxRetries?: number;
  /** Wait before the first retry, in ms; it doubles per retry (with jitter). Default 25. */
  backoffWaitMs?: number;
  /** Longest wait between retries, in ms. Default 1000. */
  backoffMaxMs?: number;
}

/** How to reach and talk to etcd; modelled on Go clientv3.Config. */
export interface ClientConfig {
  /**
   * How calls reach etcd: "http2" (gRPC over Node's own HTTP/2 module: about half the client CPU
   * per call of grpc-js), "grpc" (Node only, gRPC over @grpc/grpc-js, for its resolvers, HTTP
   * proxies and compression) or "gateway", etcd's HTTP/JSON gateway over `fetch`, as in browsers
   * and edge runtimes. The default is the entry point's: "http2" in "etcd-sdk" and
   * "etcd-sdk/http2" (which does not take "grpc"), "gateway" in "etcd-sdk/web" (its only one).
   */
  transport?: Transport;
  /**
   * etcd client URLs: "http://host:port", "https://host:port" or "host:port". An https URL (or a
   * `tls` config) connects over TLS.
   */
  endpoints: string[];
  /**
   * How long `Client.connect` keeps trying the endpoints for a first connection, and how long a
   * call waits for a connection (shared among the endpoints it tries), in ms. Default 5000.
   */
  dialTimeoutMs?: number;
  /** TLS settings; required for https endpoints that need a private CA or mutual TLS. */
  tls?: TlsConfig;
  /** Largest request the client sends, in bytes. Default 2 MiB, as in clientv3. */
  maxCallSendMsgSize?: number;
  /** Largest response the client accepts, in bytes. Default unlimited, as in clientv3. */
  maxCallRecvMsgSize?: number;
  /**
   * Deadline for every unary call that does not set its own, in ms. Streams (watch, keepalive)
   * are not bounded by it. Default none.
   */
  callTimeoutMs?: number;
  /**
   * Interval of keepalive pings on a connection with calls in flight, in ms (clientv3
   * DialKeepAliveTime). etcd refuses pings more frequent than its --grpc-keepalive-min-time (5 s by
   * default). Default 10000.
   */
  keepAliveTimeMs?: number;
  /**
   * How long a ping may go unanswered before the connection is declared dead and calls move to
   * another endpoint, in ms (clientv3 DialKeepAliveTimeout). Default 5000.
   */
  keepAliveTimeoutMs?: number;
  /**
   * Refresh the endpoint list from the cluster's member list at this interval, in ms, so that
   * members added later are used and removed ones dropped (clientv3 AutoSyncInterval). Default off.
   */
  autoSyncIntervalMs?: number;
  /**
   * Make `Client.connect` fail with OldClusterError when a reachable member runs etcd older than
   * `minClusterVersion` (default "3.4", the oldest this SDK supports) (clientv3 RejectOldCluster).
   */
  rejectOldCluster?: boolean;
  /** The oldest etcd version `rejectOldCluster` accepts, "major.minor". Implies rejectOldCluster. */
  minClusterVersion?: string;
  /** User to authenticate as when etcd has auth enabled (with `password`). */
  username?: string;
  /** Password of `username`; never shown by console.log, JSON.stringify or middleware. */
  password?: string;
  /**
   * Send `username` and `password` (and the tokens etcd gives for them) to `http://` endpoints that
   * are not on this machine. Off by default: without TLS anyone on the path can read them. Loopback
   * endpoints (127.0.0.0/8, ::1, localhost) need no opt-in.
   */
  allowInsecureCredentials?: boolean;
  /**
   * A token etcd issued (a JWT of --auth-token=jwt, or a simple token) to send on every call, as
   * clientv3's Config.Token; `client.setToken()` replaces it. With `username` and `password` as
   * well, a token etcd refuses is renewed from them; without, the call fails with its error.
   */
  token?: string;
  /** Retries of calls that change nothing on the server. */
  retry?: RetryPolicy;
  /**
   * Your own nice-grpc client middleware. `outer` runs first on every call, before the deadline,
   * auth and retry middleware, and sees each call once. `inner` runs closest to the wire and sees
   * every attempt, after retries. Errors reach both as nice-grpc ClientErrors; they become the
   * SDK's typed errors only outside all middleware.
   */
  middleware?: {
    /** Run first, once per call, before the deadline, auth and retry middleware. */
    outer?: ClientMiddleware[];
    /** Run last, next to the wire, once per attempt. */
    inner?: ClientMiddleware[];
  };
  /**
   * Where the client reports what happens to it: an endpoint set aside or recovered, a watch
   * stream broken or resumed, a renewal late or a lease lost, a token refreshed, an auto-sync that
   * failed. `console` will do. The same events go to node:diagnostics_channel (see CHANNELS).
   */
  logger?: Logger;
}

export interface Endpoint {
  /** host:port, or unix:<path> for a unix socket */
  address: string;
  /** The host name TLS checks the certificate against ("localhost" for a unix socket). */
  host: string;
  port: number;
  secure: boolean;
  /** The path of a unix socket (unix:// and unixs:// endpoints, Node only). */
  socketPath?: string;
}

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_MAX_CALL_SEND_MSG_SIZE = 2 * 1024 * 1024;

/** Parses one endpoint as clientv3 accepts it: a URL with http/https scheme, or a bare host:port. */
export function parseEndpoint(raw: string, tlsConfigured: boolean): Endpoint {
  if (typeof raw !== "string" || raw.trim() === "") {
    throw new InvalidArgumentError("endpoints", `must contain non-empty strings, got ${JSON.stringify(raw)}`);
  }
  // Never repeat a password given in the URL, whatever else is wrong with it.
  const shown = JSON.stringify(withoutUserInfo(raw));
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `${tlsConfigured ? "https" : "http"}://${raw}`);
  } catch {
    throw new InvalidArgumentError("endpoints", `contains a malformed endpoint ${shown}`);
  }
  if (url.protocol === "unix:" || url.protocol === "unixs:") return unixEndpoint(url, shown);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("endpoints", `endpoint ${shown} must use http://, https://, unix:// or unixs://`);
  }
  if (url.username || url.password) {
    throw new InvalidArgumentError("endpoints", `endpoint ${shown} carries a user name or password: give them as username and password in the config`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new InvalidArgumentError("endpoints", `endpoint ${shown} must be only a scheme, host and port`);
  }
  const secure = url.protocol === "https:";
  const port = url.port === "" ? (secure ? 443 : 2379) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return { address, host, port, secure };
}

/**
 * A unix socket endpoint as etcd names them: unix:///absolute/path, or unix://name for a socket
 * file `name` in the working directory (etcd's unix://localhost:2379); unixs:// for TLS over it.
 */
function unixEndpoint(url: URL, shown: string): Endpoint {
  if (url.username || url.password || url.search || url.hash) {
    throw new InvalidArgumentError("endpoints", `endpoint ${shown} must be only unix:// and the socket's path`);
  }
  const socketPath = decodeURIComponent(`${url.host}${url.pathname}`);
  if (socketPath === "" || socketPath === "/") throw new InvalidArgumentError("endpoints", `endpoint ${shown} names no socket`);
  return { address: `unix:${socketPath}`, host: "localhost", port: 0, secure: url.protocol === "unixs:", socketPath };
}

/**
 * How calls reach etcd: "grpc" over @grpc/grpc-js, "http2" as gRPC over node:http2, "gateway" as
 * etcd's HTTP/JSON gateway over fetch (see {@link ClientConfig.transport}).
 */
export type Transport = "grpc" | "http2" | "gateway";
/** What an entry point's Client speaks, its default first, and the entry's name for errors. */
export interface EntryTransports {
  entry: string;
  transports: readonly [Transport, ...Transport[]];
}

/** The "etcd-sdk" entry's: every transport, "http2" by default. */
export const ALL_TRANSPORTS: EntryTransports = { entry: "etcd-sdk", transports: ["http2", "grpc", "gateway"] };

function quotedList(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

/** A TLS config with its private key kept out of logs. */
export type ResolvedTls = Omit<TlsConfig, "key"> & { key: Secret<string | Uint8Array> | undefined };

export interface ResolvedConfig {
  transport: Transport;
  endpoints: Endpoint[];
  secure: boolean;
  dialTimeoutMs: number;
  tls: ResolvedTls | undefined;
  maxCallSendMsgSize: number;
  maxCallRecvMsgSize: number;
  callTimeoutMs: number | undefined;
  keepAliveTimeMs: number;
  keepAliveTimeoutMs: number;
  retry: RetryPolicy;
  credentials: { name: string; password: Secret<string> } | undefined;
  token: Secret<string> | undefined;
  /** What any endpoint list of the client must satisfy, at creation and in setEndpoints(). */
  endpointRules: EndpointRules;
  autoSyncIntervalMs: number | undefined;
  /** [major, minor] that every member must run at least, when old clusters are rejected. */
  minClusterVersion: [number, number] | undefined;
  middleware: { outer: ClientMiddleware[]; inner: ClientMiddleware[] };
  logger: Logger | undefined;
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(name, `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Checks a config and fills in defaults; every problem is an InvalidArgumentError naming the field. */
export function resolveConfig(config: ClientConfig, { entry, transports }: EntryTransports = ALL_TRANSPORTS): ResolvedConfig {
  if (config === null || typeof config !== "object") {
    throw new InvalidArgumentError("config", "must be an object with endpoints");
  }
  const credentials = resolveCredentials(config.username, config.password);
  const token = config.token === undefined ? undefined : new Secret(checkToken(config.token));
  const endpointRules: EndpointRules = {
    tls: config.tls !== undefined,
    secret: credentials ? "username" : token ? "token" : undefined,
    allowInsecureCredentials: config.allowInsecureCredentials ?? false,
  };
  const endpoints = resolveEndpoints(config.endpoints, endpointRules);
  const secure = endpoints[0]!.secure;
  if (config.transport !== undefined && !transports.includes(config.transport)) {
    const where = entry === ALL_TRANSPORTS.entry ? "" : ` in the "${entry}" entry`;
    throw new InvalidArgumentError("transport", `must be ${quotedList(transports)}${where}, got ${JSON.stringify(config.transport)}`);
  }
  return {
    transport: config.transport ?? transports[0],
    endpoints,
    secure,
    dialTimeoutMs: positiveInteger(config.dialTimeoutMs, "dialTimeoutMs", DEFAULT_DIAL_TIMEOUT_MS),
    tls: config.tls && { ...config.tls, key: config.tls.key === undefined ? undefined : new Secret(config.tls.key) },
    maxCallSendMsgSize: positiveInteger(config.maxCallSendMsgSize, "maxCallSendMsgSize", DEFAULT_MAX_CALL_SEND_MSG_SIZE),
    // grpc-js reads -1 as "no limit".
    maxCallRecvMsgSize: positiveInteger(config.maxCallRecvMsgSize, "maxCallRecvMsgSize", -1),
    callTimeoutMs: config.callTimeoutMs === undefined ? undefined : positiveInteger(config.callTimeoutMs, "callTimeoutMs", 0),
    keepAliveTimeMs: positiveInteger(config.keepAliveTimeMs, "keepAliveTimeMs", 10_000),
    keepAliveTimeoutMs: positiveInteger(config.keepAliveTimeoutMs, "keepAliveTimeoutMs", 5_000),
    retry: resolveRetry(config.retry),
    credentials,
    token,
    endpointRules,
    autoSyncIntervalMs: config.autoSyncIntervalMs === undefined ? undefined : positiveInteger(config.autoSyncIntervalMs, "autoSyncIntervalMs", 0),
    minClusterVersion:
      config.rejectOldCluster || config.minClusterVersion !== undefined ? parseMinorVersion(config.minClusterVersion ?? "3.4", "minClusterVersion") : undefined,
    middleware: { outer: middlewareList(config.middleware?.outer, "middleware.outer"), inner: middlewareList(config.middleware?.inner, "middleware.inner") },
    logger: checkLogger(config.logger),
  };
}

function resolveRetry(retry: RetryPolicy | undefined): RetryPolicy {
  if (retry === undefined) return {};
  const nonNegative = (value: number | undefined, name: string) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new InvalidArgumentError(`retry.${name}`, `must be a non-negative integer, got ${String(value)}`);
    }
    return value;
  };
  return {
    maxRetries: nonNegative(retry.maxRetries, "maxRetries"),
    backoffWaitMs: nonNegative(retry.backoffWaitMs, "backoffWaitMs"),
    backoffMaxMs: nonNegative(retry.backoffMaxMs, "backoffMaxMs"),
  };
}

function middlewareList(list: ClientMiddleware[] | undefined, name: string): ClientMiddleware[] {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.some((m) => typeof m !== "function")) {
    throw new InvalidArgumentError(name, "must be an array of nice-grpc client middleware functions");
  }
  return list;
}

function resolveCredentials(username: string | undefined, password: string | undefined): ResolvedConfig["credentials"] {
  if (username === undefined && password === undefined) return undefined;
  if (typeof username !== "string" || username === "") throw new InvalidArgumentError("username", "must be a non-empty string when password is given");
  if (typeof password !== "string") throw new InvalidArgumentError("password", "must be a string when username is given");
  return { name: username, password: new Secret(password) };
}

/** What a list of endpoints must satisfy, from the rest of the config. */
export interface EndpointRules {
  /** A tls config was given: every endpoint must use TLS. */
  tls: boolean;
  /** What secret calls carry, if any: the option to name when one would go in plaintext. */
  secret: "username" | "token" | undefined;
  allowInsecureCredentials: boolean;
}

/**
 * Parses and checks a list of endpoints as a whole: one scheme for all, TLS where a tls config asks
 * for it, and no credentials in plaintext to endpoints off this machine unless allowed.
 */
export function resolveEndpoints(raw: unknown, rules: EndpointRules): Endpoint[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new InvalidArgumentError("endpoints", "must be a non-empty array of etcd client URLs");
  }
  const endpoints = raw.map((e: unknown) => parseEndpoint(e as string, rules.tls));
  const secure = endpoints[0]!.secure;
  if (endpoints.some((e) => e.secure !== secure)) {
    throw new InvalidArgumentError("endpoints", "must all use TLS or all not use it");
  }
  if (rules.tls && !secure) {
    throw new InvalidArgumentError("endpoints", "use http:// while a tls config is given: use https:// (or host:port) so that calls go over TLS");
  }
  if (rules.secret && !secure && !rules.allowInsecureCredentials && !endpoints.every(isLoopback)) {
    const what = rules.secret === "username" ? "username and password" : "the token";
    throw new InvalidArgumentError(
      rules.secret,
      `${what} would go in plaintext to http:// endpoints off this machine: use https:// endpoints, or set allowInsecureCredentials: true where the network is trusted`,
    );
  }
  return endpoints;
}

function checkLogger(logger: unknown): Logger | undefined {
  if (logger === undefined) return undefined;
  if (typeof logger !== "object" || logger === null) throw new InvalidArgumentError("logger", "must be an object with debug, info, warn or error methods, as console has");
  for (const level of ["debug", "info", "warn", "error"] as const) {
    const method = (logger as Record<string, unknown>)[level];
    if (method !== undefined && typeof method !== "function") throw new InvalidArgumentError(`logger.${level}`, "must be a function");
  }
  return logger as Logger;
}

/** An auth token as etcd issues them: a non-empty string that fits in gRPC metadata. */
export function checkToken(token: unknown): string {
  if (typeof token !== "string" || token === "" || /[^\x20-\x7e]/.test(token)) {
    throw new InvalidArgumentError("token", "must be a non-empty string of printable ASCII, as etcd issues them");
  }
  return token;
}

/** An endpoint on this machine, whose traffic no one else can read. */
function isLoopback(endpoint: Endpoint): boolean {
  const { host } = endpoint;
  return endpoint.socketPath !== undefined || host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** "3.5" or "3.5.12" as [3, 5]. */
export function parseMinorVersion(version: string, what: string): [number, number] {
  const match = typeof version === "string" ? /^(\d+)\.(\d+)(\.\d+)?([-+].*)?$/.exec(version) : null;
  if (!match) throw new InvalidArgumentError(what, `must be a version like "3.5", got ${JSON.stringify(version)}`);
  return [Number(match[1]), Number(match[2])];
}
