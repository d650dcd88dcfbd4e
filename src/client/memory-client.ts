import { BaseClient } from "./base-client.js";
import type { ClientConfig, EntryTransports } from "../core/config.js";
import { EtcdError } from "../core/errors.js";
import { type MemoryEtcdOptions, MemoryServer } from "../testing/server.js";
import { MemoryWire } from "../testing/wire.js";

/**
 * The calls of an in-memory etcd's clients carry gRPC's messages, codecs and statuses, without
 * the network; no config chooses a transport for them.
 */
const TESTING_ENTRY: EntryTransports = { entry: "etcd-sdk/testing", transports: ["grpc"] };

/**
 * What a client of an in-memory etcd takes of a ClientConfig: what shapes its calls. It has no
 * endpoints, transport, TLS or credentials to give: it is connected at once, to its etcd only.
 */
export type MemoryClientConfig = Pick<ClientConfig, "callTimeoutMs" | "maxCallSendMsgSize" | "maxCallRecvMsgSize" | "retry" | "middleware" | "logger">;

/**
 * A client of a {@link MemoryEtcd}, made by `etcd.client()`: the API of every entry's Client
 * (KV, Txn, Watch, Lease and keep-alive, namespaces, the concurrency recipes), with the same
 * middleware chain and pipeline, over a wire to the etcd in this process.
 */
export class MemoryClient extends BaseClient {
  /** @internal */
  constructor(
    server: MemoryServer,
    endpoint: string,
    config: MemoryClientConfig,
    /** Tells the etcd the client is closed. */
    private readonly forget: (client: MemoryClient) => void,
  ) {
    const { callTimeoutMs, maxCallSendMsgSize, maxCallRecvMsgSize, retry, middleware, logger } = config;
    const clientConfig: ClientConfig = { endpoints: [endpoint], callTimeoutMs, maxCallSendMsgSize, maxCallRecvMsgSize, retry, middleware, logger };
    super(clientConfig, TESTING_ENTRY, (resolved) =>
      new MemoryWire(server, { endpoints: resolved.endpoints, maxSendBytes: resolved.maxCallSendMsgSize, maxReceiveBytes: resolved.maxCallRecvMsgSize }),
    );
  }

  /** Ends every call, watcher and keep-alive of the client (see BaseClient.close); its etcd lives on. */
  override close(): Promise<void> {
    this.forget(this);
    return super.close();
  }
}

/**
 * An etcd server in memory, for unit tests of code that uses the SDK: no process, no port, no
 * data directory. Its clients run the whole client stack unchanged; the server does what one
 * etcd 3.7 member does for the KV, Watch and Lease APIs, with etcd's revisions, compaction,
 * checks and exact errors. Leases expire on its clock, which a test can move itself with a
 * {@link ManualClock}. What it does not do (clusters, maintenance, auth, the lock and election
 * services) fails with a TransportError of code Unimplemented that says so.
 *
 * @example
 * ```ts
 * import { MemoryEtcd, ManualClock } from "etcd-sdk/testing";
 *
 * const clock = new ManualClock();
 * await using etcd = new MemoryEtcd({ clock });
 * const client = etcd.client();
 * const { id } = await client.lease.grant(10);
 * await client.kv.put("service/a", "10.0.0.1", { lease: id });
 * clock.advance(10_000); // the lease runs out: its key is deleted
 * console.log((await client.kv.get("service/a")).count); // 0n
 * ```
 */
export class MemoryEtcd implements AsyncDisposable {
  /** The endpoint (host:port) its clients name, and their errors say answered. */
  readonly endpoint: string = "in-memory-etcd:2379";
  private readonly server: MemoryServer;
  private readonly clients = new Set<MemoryClient>();
  private closing: Promise<void> | undefined;

  /** Starts an empty etcd, at revision 1. Throws InvalidArgumentError for options etcd would refuse. */
  constructor(options: MemoryEtcdOptions = {}) {
    this.server = new MemoryServer(options);
  }

  /** A new client of this etcd; close it, or the etcd, when done. */
  client(config: MemoryClientConfig = {}): MemoryClient {
    if (this.closing) throw new EtcdError("the in-memory etcd is closed");
    const client = new MemoryClient(this.server, this.endpoint, config, (closed) => this.clients.delete(closed));
    this.clients.add(client);
    return client;
  }

  /**
   * Closes every client it made and stops its timers; resolves once the clients are closed.
   * Calling it again gives the same promise.
   */
  close(): Promise<void> {
    this.closing ??= Promise.all([...this.clients].map((client) => client.close())).then(() => this.server.close());
    return this.closing;
  }

  /** What `await using` calls at the end of the scope: {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
