import { AuthDefinition, ClusterDefinition, MaintenanceDefinition } from "../../gen/etcdserverpb/rpc.js";
import { Auth } from "../api/auth.js";
import { Cluster } from "../api/cluster.js";
import { Maintenance } from "../api/maintenance.js";
import { ElectionDefinition } from "../../gen/v3electionpb/v3election.js";
import { LockDefinition } from "../../gen/v3lockpb/v3lock.js";
import { ElectionService, LockService } from "../api/lockservice.js";
import { type ClientConfig, type EntryTransports, type ResolvedConfig, type Transport, checkToken, parseEndpoint, parseMinorVersion, resolveConfig, resolveEndpoints } from "../core/config.js";
import { ClientClosedError, InvalidArgumentError, OldClusterError } from "../core/errors.js";
import { Keyspace } from "../api/keyspace.js";
import type { KV } from "../api/kv.js";
import type { Lease } from "../api/lease.js";
import { type ServiceFactory, CallPipeline, type Wire } from "../pipeline/call-pipeline.js";
import type { Txn } from "../api/txn.js";
import type { Bytes } from "../core/bytes.js";
import { answersProgressInOrder, type Watcher, type WatchOptions } from "../api/watch.js";
import { unref } from "../core/timers.js";
import { assertCodecsReadBigInt } from "../core/int64.js";
import { Diagnostics, type DiagnosticsChannelModule } from "../core/diagnostics.js";
import { type CacheOptions, type CacheRange, createCache, type WatchCache } from "../cache/index.js";

/** How long the watch-progress check waits for each member's version; one that is silent is left out. */
const PROGRESS_VERSION_PROBE_MS = 1000;

/**
 * A connection to an etcd cluster, as Go's clientv3.Client, over whichever wire the entry point
 * gives it (`Client` of "etcd-sdk", "etcd-sdk/http2" or "etcd-sdk/web"); everything above the wire is the same.
 */
export abstract class BaseClient implements AsyncDisposable {
  /** Cluster membership. */
  readonly cluster: Cluster;
  /** Status, alarms, defragmentation, hashes, leadership transfer, downgrade, snapshots. */
  readonly maintenance: Maintenance;
  /** Users, roles, permissions; turning auth on and off. */
  readonly auth: Auth;
  /** etcd's server-side lock service (v3lock). */
  readonly lockService: LockService;
  /** etcd's server-side election service (v3election). */
  readonly electionService: ElectionService;
  private readonly root: Keyspace;
  /** Service clients that refuse to work once the client is closed. */
  private readonly service: ServiceFactory;
  private readonly config: ResolvedConfig;
  private readonly pipeline: CallPipeline;
  private readonly autoSync: ReturnType<typeof setInterval> | undefined;
  private readonly diagnostics: Diagnostics;
  private closed = false;
  /** Whether the members answer watch progress requests in order, once asked for these endpoints. */
  private progressVerdict: Promise<boolean> | undefined;
  /** What close() gave, once it was called. */
  private closing: Promise<void> | undefined;

  /**
   * @param diagnosticsChannel node:diagnostics_channel, from the entries that run on Node: the
   * client then publishes its events there as well as to the configured logger.
   */
  protected constructor(config: ClientConfig, transports: EntryTransports, wire: (config: ResolvedConfig) => Wire, diagnosticsChannel?: DiagnosticsChannelModule) {
    assertCodecsReadBigInt();
    this.config = resolveConfig(config, transports);
    this.diagnostics = new Diagnostics(diagnosticsChannel, this.config.logger);
    this.pipeline = new CallPipeline(this.config, wire(this.config), this.diagnostics);
    const open = (factory: ServiceFactory): ServiceFactory => (definition) => {
      if (this.closed) throw new ClientClosedError();
      return factory(definition);
    };
    this.service = open((d) => this.pipeline.service(d));
    const context = {
      limits: this.pipeline.wire.limits,
      maxResponseBytes: this.config.maxCallRecvMsgSize,
      diagnostics: this.diagnostics,
      progressRequestsOrdered: () => this.progressRequestsOrdered(),
    };
    this.root = new Keyspace(this.service, (middleware) => open(this.pipeline.withMiddleware(middleware)), context);
    this.cluster = new Cluster(() => this.service(ClusterDefinition));
    this.maintenance = new Maintenance(() => this.service(MaintenanceDefinition));
    this.auth = new Auth(() => this.service(AuthDefinition));
    this.lockService = new LockService(() => this.service(LockDefinition));
    this.electionService = new ElectionService(() => this.service(ElectionDefinition));
    const interval = this.config.autoSyncIntervalMs;
    if (interval !== undefined) {
      // A failed sync keeps the current list; the next tick tries again.
      this.autoSync = unref(setInterval(() => this.sync().catch((error: unknown) => this.diagnostics.publish("autoSyncFailed", { error })), interval));
    }
  }

  /**
   * What JSON.stringify writes of a client: where it connects and how, never its credentials, TLS
   * key or token.
   */
  toJSON(): {
    /** The endpoints calls can go to, host:port. */
    endpoints: string[];
    /** The transport calls go over. */
    transport: Transport;
  } {
    return { endpoints: this.endpoints, transport: this.config.transport };
  }

  /** What console.log and util.inspect show: the same as toJSON, under the class's name. */
  [Symbol.for("nodejs.util.inspect.custom")](_depth: number, options: object, inspect: (value: unknown, options: object) => string): string {
    return `${this.constructor.name} ${inspect(this.toJSON(), options)}`;
  }

  /**
   * Replaces the endpoints calls go to (clientv3's SetEndpoints), in the forms the config takes;
   * calls in flight finish where they are. Throws InvalidArgumentError for a list the config would
   * refuse.
   */
  setEndpoints(endpoints: string[]): void {
    if (this.closed) throw new ClientClosedError();
    const parsed = resolveEndpoints(endpoints, this.config.endpointRules);
    // The wires made their TLS settings (or none) for the client's scheme.
    if (parsed[0]!.secure !== this.config.secure) {
      throw new InvalidArgumentError("endpoints", `must ${this.config.secure ? "" : "not "}use TLS, as the client's endpoints do`);
    }
    this.useEndpoints(parsed);
  }

  private useEndpoints(endpoints: ReturnType<typeof resolveEndpoints>): void {
    this.pipeline.setEndpoints(endpoints);
    this.progressVerdict = undefined;
  }

  /**
   * Replaces the auth token every call sends from now on: one the application renewed itself
   * (clientv3's Config.Token, given anew). Throws InvalidArgumentError for one etcd could not have
   * issued, and on a client created with neither a token nor credentials.
   */
  setToken(token: string): void {
    if (this.closed) throw new ClientClosedError();
    this.pipeline.setToken(checkToken(token));
  }

  /** The endpoints calls can go to, host:port. */
  get endpoints(): string[] {
    return this.pipeline.endpoints;
  }

  /**
   * Replaces the endpoint list with the client URLs of the cluster's voting members (clientv3
   * Sync). Learners are left out: they cannot serve most requests.
   */
  async sync(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const { members } = await this.cluster.memberList(options);
    const secure = this.config.secure;
    const endpoints = members
      .filter((m) => !m.isLearner && m.name !== "")
      .flatMap((m) => m.clientURLs)
      .map((url) => parseEndpoint(url, secure))
      .filter((e) => e.secure === secure);
    if (endpoints.length > 0 && !this.closed) this.useEndpoints(endpoints);
    return this.endpoints;
  }

  /**
   * Waits until a new client has connected (failing after `dialTimeoutMs`), has authenticated
   * when given credentials, and has checked versions when asked to; closes it on failure.
   */
  protected static async opened<C extends BaseClient>(client: C): Promise<C> {
    try {
      await client.pipeline.ready(new Date(Date.now() + client.config.dialTimeoutMs));
      await client.pipeline.authenticate();
      if (client.config.minClusterVersion) await client.checkVersions(client.config.minClusterVersion);
      return client;
    } catch (err) {
      void client.close();
      throw err;
    }
  }

  /** Asks every reachable member for its version; rejects if one is older than `minimum`. */
  private async checkVersions([major, minor]: [number, number]): Promise<void> {
    const answers = await this.memberVersions(this.config.dialTimeoutMs);
    for (const { endpoint, version } of answers) {
      if (version === undefined) continue;
      const [serverMajor, serverMinor] = parseMinorVersion(version, `version of ${endpoint}`);
      if (serverMajor < major || (serverMajor === major && serverMinor < minor)) throw new OldClusterError(endpoint, version, `${major}.${minor}`);
    }
  }

  /** Each member's etcd version; undefined for one that did not answer within `timeoutMs`. */
  private memberVersions(timeoutMs: number): Promise<{ endpoint: string; version: string | undefined }[]> {
    const signal = AbortSignal.timeout(timeoutMs);
    return Promise.all(
      this.endpoints.map(async (endpoint) => {
        const status = this.maintenance.status({ endpoint, signal });
        return { endpoint, version: await status.then((s) => s.version).catch(() => undefined) };
      }),
    );
  }

  /**
   * Whether the members that tell their version within a second all answer watch progress
   * requests in order with their events; asked once per endpoint list (again while none answered).
   */
  private progressRequestsOrdered(): Promise<boolean> {
    this.progressVerdict ??= this.memberVersions(PROGRESS_VERSION_PROBE_MS).then((answers) => {
      const known = answers.flatMap(({ version }) => (version === undefined ? [] : [version]));
      if (known.length === 0) this.progressVerdict = undefined;
      return known.every(answersProgressInOrder);
    });
    return this.progressVerdict;
  }

  /** Key-value reads and writes. */
  get kv(): KV {
    return this.root.kv;
  }

  /** Leases: grant, revoke, time-to-live, list, keep-alive. */
  get lease(): Lease {
    return this.root.lease;
  }

  /**
   * Watches a key, or a range, prefix or from-key selection, from now or from `startRevision`.
   * Iterate the watcher with `for await`; leave the loop or abort `signal` to end it.
   *
   * @example
   * ```ts
   * const watcher = client.watch("example/watch/", { prefix: true, signal: AbortSignal.timeout(10_000) });
   * await watcher.ready; // etcd confirmed it: later changes will be seen
   * await client.kv.put("example/watch/job", "queued");
   * for await (const { events } of watcher) {
   *   for (const event of events) console.log(event.type, event.kv.keyString, event.kv.valueString);
   *   break; // leaving the loop cancels the watcher
   * }
   * ```
   *
   * @throws {@link InvalidArgumentError} at once, for a bad key or option.
   * @throws {@link ClientClosedError} at once, after `close()`; the iteration of a watcher still
   * open then throws it too.
   * @throws {@link CallCanceledError} from the iteration, when `signal` fires.
   * @throws {@link WatchCompactedError} from the iteration, when `startRevision` (or the revision
   * to resume from) was compacted.
   * @throws {@link WatchOverflowError} from the iteration, when the reader fell more than
   * `maxBuffered` responses behind.
   * @throws {@link EtcdServerError} from the iteration, when etcd refuses or cancels the watcher
   * ({@link ErrPermissionDenied}, ...). A broken stream or a lost leader is not an error: the
   * watcher resumes on another member without losing or repeating an event.
   */
  watch(key: Bytes, options: WatchOptions = {}): Watcher {
    return this.root.watch(key, options);
  }

  /**
   * Starts a transaction: `client.txn().if(...).then(...).else(...).commit()`. Conditions come from
   * {@link compare}, operations from {@link op}; `commit()` resolves with the results of the
   * branch that ran, typed after its operations.
   *
   * @example
   * ```ts
   * import { compare, op } from "etcd-sdk";
   *
   * // Create the key only if it does not exist; otherwise read who holds it.
   * const res = await client
   *   .txn()
   *   .if(compare.version("example/txn/owner", "=", 0))
   *   .then(op.put("example/txn/owner", "worker-1"))
   *   .else(op.get("example/txn/owner"))
   *   .commit();
   * if (res.succeeded) console.log("took it at revision", res.header.revision);
   * else console.log("held by", res.results[0].kvs[0]?.valueString);
   * ```
   */
  txn(): Txn {
    return this.root.txn();
  }

  /**
   * A view of the keys under `prefix`, seen without it, as clientv3/namespace: its `kv`, `txn()`,
   * `watch()` and `lease` read and write only there, and the concurrency recipes take it as a
   * client. It shares the client's connections and needs no closing of its own.
   *
   * @example
   * ```ts
   * const app = client.namespace("example/namespace/");
   * await app.kv.put("config", "v1"); // stored as "example/namespace/config"
   * const { kvs } = await app.kv.get("", { prefix: true });
   * console.log(kvs.map((kv) => kv.keyString)); // ["config"]
   * ```
   *
   * @throws {@link InvalidArgumentError} when `prefix` is neither a string nor a Uint8Array.
   */
  namespace(prefix: Bytes): Keyspace {
    return this.root.namespace(prefix);
  }
  /**
   * A local, watch-fed copy of the keys under a prefix (or in a range), for reads without a round
   * trip: the same as `createCache(client, range, options)`; see WatchCache.
   *
   * @example
   * ```ts
   * await using cache = await client.cache({ prefix: "example/config/" });
   * const put = await client.kv.put("example/config/db", "db1");
   * await cache.waitForRevision(put.header.revision);
   * console.log((await cache.get("example/config/db")).kv?.valueString);
   * ```
   *
   * @throws {@link InvalidArgumentError} naming the argument, for a bad range or option.
   * @throws {@link EndpointError} or an {@link EtcdServerError} when the first listing fails.
   */
  cache(range: CacheRange, options: CacheOptions = {}): Promise<WatchCache> {
    return createCache(this, range, options);
  }


  /**
   * Ends every call, watcher and keep-alive and closes the connections. The promise resolves once
   * the connections are gone (on etcd's gateway, fetch closes its pooled ones when idle); calling
   * it again gives the same promise. Calls made afterwards reject with ClientClosedError.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      clearInterval(this.autoSync);
      this.root.close();
      this.closing = this.pipeline.close();
    }
    return this.closing;
  }

  /** What `await using` calls when the client goes out of scope: {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
