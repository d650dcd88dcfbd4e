import { InvalidArgumentError } from "./errors.js";

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

/** How to reach and talk to etcd; modelled on Go clientv3.Config. */
export interface ClientConfig {
  /**
   * etcd client URLs: "http://host:port", "https://host:port" or "host:port". An https URL (or a
   * `tls` config) connects over TLS.
   */
  endpoints: string[];
  /** How long `Client.connect` waits for a first connection, in ms. Default 5000. */
  dialTimeoutMs?: number;
  /** TLS settings; required for https endpoints that need a private CA or mutual TLS. */
  tls?: TlsConfig;
  /** Largest request the client sends, in bytes. Default 2 MiB, as in clientv3. */
  maxCallSendMsgSize?: number;
  /** Largest response the client accepts, in bytes. Default unlimited, as in clientv3. */
  maxCallRecvMsgSize?: number;
}

export interface Endpoint {
  /** host:port */
  address: string;
  host: string;
  port: number;
  secure: boolean;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_CALL_SEND_MSG_SIZE = 2 * 1024 * 1024;

/** Parses one endpoint as clientv3 accepts it: a URL with http/https scheme, or a bare host:port. */
export function parseEndpoint(raw: string, tlsConfigured: boolean): Endpoint {
  if (typeof raw !== "string" || raw.trim() === "") {
    throw new InvalidArgumentError("endpoints", `must contain non-empty strings, got ${JSON.stringify(raw)}`);
  }
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `${tlsConfigured ? "https" : "http"}://${raw}`);
  } catch {
    throw new InvalidArgumentError("endpoints", `contains a malformed endpoint ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("endpoints", `endpoint ${JSON.stringify(raw)} must use http:// or https://`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw new InvalidArgumentError("endpoints", `endpoint ${JSON.stringify(raw)} must be only a scheme, host and port`);
  }
  const secure = url.protocol === "https:";
  const port = url.port === "" ? (secure ? 443 : 2379) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return { address, host, port, secure };
}

export interface ResolvedConfig {
  endpoints: Endpoint[];
  secure: boolean;
  dialTimeoutMs: number;
  tls: TlsConfig | undefined;
  maxCallSendMsgSize: number;
  maxCallRecvMsgSize: number;
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(name, `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Checks a config and fills in defaults; every problem is an InvalidArgumentError naming the field. */
export function resolveConfig(config: ClientConfig): ResolvedConfig {
  if (config === null || typeof config !== "object") {
    throw new InvalidArgumentError("config", "must be an object with endpoints");
  }
  if (!Array.isArray(config.endpoints) || config.endpoints.length === 0) {
    throw new InvalidArgumentError("endpoints", "must be a non-empty array of etcd client URLs");
  }
  const endpoints = config.endpoints.map((e) => parseEndpoint(e, config.tls !== undefined));
  const secure = endpoints[0]!.secure;
  if (endpoints.some((e) => e.secure !== secure)) {
    throw new InvalidArgumentError("endpoints", "must all use TLS or all not use it");
  }
  return {
    endpoints,
    secure: secure || config.tls !== undefined,
    dialTimeoutMs: positiveInteger(config.dialTimeoutMs, "dialTimeoutMs", DEFAULT_DIAL_TIMEOUT_MS),
    tls: config.tls,
    maxCallSendMsgSize: positiveInteger(config.maxCallSendMsgSize, "maxCallSendMsgSize", DEFAULT_MAX_CALL_SEND_MSG_SIZE),
    // grpc-js reads -1 as "no limit".
    maxCallRecvMsgSize: positiveInteger(config.maxCallRecvMsgSize, "maxCallRecvMsgSize", -1),
  };
}
