import type { KV, KeyValue } from "../api/kv.js";
import type { Session } from "../concurrency/session.js";
import { describe } from "../core/bytes.js";
import { checkSignal } from "../core/call-checks.js";
import { InvalidArgumentError } from "../core/errors.js";
import { type CacheClient, type CacheReadOptions, createCache, type WatchCache } from "./cache.js";
import { CacheClosedError } from "./errors.js";
import type { CacheUpdate } from "./feed.js";

/** An instance of a service: where to reach it, and what else its clients should know. */
export interface Endpoint {
  /** The address, "host:port" or any form the service's clients dial. */
  addr: string;
  /** Anything JSON can carry: a zone, a weight, a version. */
  metadata?: unknown;
}

/** A change to a service's live set: an endpoint added (or changed), or deleted. */
export interface EndpointUpdate {
  /** Whether the endpoint joined (or changed) or left. */
  op: "add" | "delete";
  /** The endpoint's key, `<target>/<name>`. */
  key: string;
  /** The endpoint as added; undefined for a delete. */
  endpoint: Endpoint | undefined;
}

/** The live set of a service: endpoint by key, and the revision it reflects. */
export interface EndpointList {
  /** The store revision the set reflects. */
  revision: bigint;
  /** Each live endpoint by its key, `<target>/<name>`. */
  endpoints: Map<string, Endpoint>;
}

/** What an EndpointManager needs of a client: a cache's reads and watch, and puts and deletes. */
export interface RegistryClient extends CacheClient {
  /** The cache's reads, and the puts and deletes that add and remove endpoints. */
  readonly kv: Pick<KV, "get" | "iterate" | "put" | "delete">;
}

/** Options of an EndpointManager. */
export interface EndpointManagerOptions {
  /** Events the manager's cache keeps (see CacheOptions.windowSize). */
  windowSize?: number;
}

/**
 * An endpoint as etcd keeps it: the JSON of clientv3's naming/endpoints (`{"Op":0,"Addr":...,
 * "Metadata":...}`), so that Go services and gRPC's etcd resolver read the same registry.
 */
function encode(endpoint: Endpoint): string {
  return JSON.stringify({ Op: 0, Addr: endpoint.addr, Metadata: endpoint.metadata ?? null });
}

/** The endpoint a key holds; undefined for a value that is not one (skipped, as clientv3 skips it). */
function decode(kv: KeyValue): Endpoint | undefined {
  try {
    const parsed = kv.json<{ Addr?: unknown; Metadata?: unknown }>();
    if (typeof parsed !== "object" || parsed === null || typeof parsed.Addr !== "string") return undefined;
    return parsed.Metadata === null || parsed.Metadata === undefined ? { addr: parsed.Addr } : { addr: parsed.Addr, metadata: parsed.Metadata };
  } catch {
    return undefined;
  }
}

function liveSet(kvs: readonly KeyValue[]): Map<string, Endpoint> {
  const endpoints = new Map<string, Endpoint>();
  for (const kv of kvs) {
    const endpoint = decode(kv);
    if (endpoint) endpoints.set(kv.keyString, endpoint);
  }
  return endpoints;
}

/** The updates that take a client who knew `known` to the live set of `update`; `known` follows. */
function updatesFor(update: CacheUpdate, known: Map<string, Endpoint>): EndpointUpdate[] {
  const updates: EndpointUpdate[] = [];
  if (update.type === "reset") {
    const now = liveSet(update.kvs);
    for (const key of known.keys()) if (!now.has(key)) updates.push({ op: "delete", key, endpoint: undefined });
    for (const [key, endpoint] of now) if (JSON.stringify(known.get(key)) !== JSON.stringify(endpoint)) updates.push({ op: "add", key, endpoint });
    known.clear();
    for (const [key, endpoint] of now) known.set(key, endpoint);
    return updates;
  }
  for (const event of update.events) {
    const key = event.kv.keyString;
    const endpoint = event.type === "put" ? decode(event.kv) : undefined;
    if (endpoint) {
      known.set(key, endpoint);
      updates.push({ op: "add", key, endpoint });
    } else if (known.delete(key)) {
      updates.push({ op: "delete", key, endpoint: undefined });
    }
  }
  return updates;
}

/**
 * A service registry on a key prefix, as clientv3's naming/endpoints Manager: each instance
 * of the service adds its endpoint under `<target>/` with its session's lease, so that it leaves
 * the live set when it stops or dies; clients list and follow that set through a WatchCache of
 * the prefix (made on first use), which answers lists locally and survives what the watch survives.
 * Keys and values are those of clientv3, so Go services can share the registry.
 *
 * @example
 * ```ts
 * import { EndpointManager, Session } from "etcd-sdk";
 *
 * // In each instance of the service:
 * await using session = await Session.create(client, { ttl: 10 });
 * const registry = new EndpointManager(client, "services/api");
 * await registry.addEndpoint("services/api/node-1", { addr: "10.0.0.1:8080", metadata: { zone: "a" } }, { session });
 *
 * // In its clients:
 * await using api = new EndpointManager(client, "services/api");
 * const { endpoints } = await api.list();
 * console.log([...endpoints.values()].map((e) => e.addr));
 * for await (const updates of api.watch({ signal: AbortSignal.timeout(10_000) })) {
 *   for (const u of updates) console.log(u.op, u.key, u.endpoint?.addr);
 *   break; // the first update is the live set
 * }
 * ```
 */
export class EndpointManager implements AsyncDisposable {
  private readonly prefix: string;
  private cache: Promise<WatchCache> | undefined;
  private closed = false;

  /** Throws InvalidArgumentError ("endpoint target") when `target` is not a non-empty string. */
  constructor(
    private readonly client: RegistryClient,
    /** The service's name, the prefix of its endpoints' keys ("services/api"). */
    readonly target: string,
    private readonly options: EndpointManagerOptions = {},
  ) {
    if (typeof target !== "string" || target === "") throw new InvalidArgumentError("endpoint target", `must be a non-empty string, got ${describe(target)}`);
    this.prefix = `${target}/`;
  }

  /**
   * Adds (or replaces) the endpoint at `key`, which must be `<target>/<name>`; with `session`,
   * under its lease, so that the endpoint goes when the session does. Resolves with the revision
   * of the write. Throws InvalidArgumentError ("endpoint key", "endpoint addr") for bad input.
   */
  async addEndpoint(key: string, endpoint: Endpoint, options: { session?: Session; signal?: AbortSignal } = {}): Promise<bigint> {
    this.checkKey(key);
    if (typeof endpoint?.addr !== "string" || endpoint.addr === "") throw new InvalidArgumentError("endpoint addr", `must be a non-empty string, got ${describe(endpoint?.addr)}`);
    const res = await this.client.kv.put(key, encode(endpoint), { lease: options.session?.lease, signal: options.signal });
    return res.header.revision;
  }

  /** Deletes the endpoint at `key` (`<target>/<name>`); resolves with the revision of the delete. */
  async deleteEndpoint(key: string, options: { signal?: AbortSignal } = {}): Promise<bigint> {
    this.checkKey(key);
    const res = await this.client.kv.delete(key, { signal: options.signal });
    return res.header.revision;
  }

  /**
   * The live set, from the manager's cache: at once, or with `consistent` once the cache has
   * every change etcd had made when asked (a put from another client included).
   */
  async list(options: CacheReadOptions = {}): Promise<EndpointList> {
    const cache = await this.open();
    const { revision, kvs } = await cache.list(options);
    return { revision, endpoints: liveSet(kvs) };
  }

  /**
   * The live set as it changes, as clientv3's NewWatchChannel: first every endpoint as an "add"
   * (nothing while there is none), then each change as it happens. After the cache had to list
   * anew, the updates that take the set from what was yielded to what is there. Ends when
   * `signal` fires (with CallCanceledError) or the manager closes; after close() it rejects with
   * CacheClosedError, as `list` does.
   */
  async *watch(options: { signal?: AbortSignal } = {}): AsyncGenerator<EndpointUpdate[], void, undefined> {
    const signal = checkSignal(options.signal, "endpoint watch signal");
    const cache = await this.open();
    const { revision, kvs } = await cache.list();
    const known = liveSet(kvs);
    const feed = cache.changes({ fromRevision: revision + 1n, signal });
    try {
      if (known.size > 0) yield [...known].map(([key, endpoint]) => ({ op: "add" as const, key, endpoint }));
      for await (const update of feed) {
        const updates = updatesFor(update, known);
        if (updates.length > 0) yield updates;
      }
    } finally {
      feed.cancel();
    }
  }

  /** Closes the manager's cache: its watchers end. Endpoints stay registered (their sessions keep them). */
  async close(): Promise<void> {
    this.closed = true;
    const cache = this.cache;
    this.cache = undefined;
    await (await cache?.catch(() => undefined))?.close();
  }

  /** close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private open(): Promise<WatchCache> {
    if (this.closed) return Promise.reject(new CacheClosedError());
    if (!this.cache) {
      const made = createCache(this.client, { prefix: this.prefix }, { windowSize: this.options.windowSize });
      // A failed start is not kept: the next call tries again.
      made.catch(() => {
        if (this.cache === made) this.cache = undefined;
      });
      this.cache = made;
    }
    return this.cache;
  }

  private checkKey(key: unknown): void {
    if (typeof key !== "string" || !key.startsWith(this.prefix) || key.length === this.prefix.length) {
      throw new InvalidArgumentError("endpoint key", `must be "${this.prefix}<name>", got ${typeof key === "string" ? JSON.stringify(key) : describe(key)}`);
    }
  }
}
