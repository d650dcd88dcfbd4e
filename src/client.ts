import type { CompatServiceDefinition } from "nice-grpc";
import { KVDefinition, LeaseDefinition } from "../gen/etcdserverpb/rpc.js";
import { type ClientConfig, type ResolvedConfig, resolveConfig } from "./config.js";
import { ClientClosedError } from "./errors.js";
import { KV } from "./kv.js";
import { Lease } from "./lease.js";
import { GrpcTransport, type ServiceClient, type Transport } from "./transport.js";
import { Txn } from "./txn.js";

/**
 * A connection to an etcd cluster, as Go's clientv3.Client. Create it with `new Client(config)`
 * (connects lazily) or `await Client.connect(config)` (waits for a connection within the dial
 * timeout), and end it with `close()` or `await using`.
 */
export class Client implements AsyncDisposable {
  /** Key-value reads and writes. */
  readonly kv: KV;
  /** Leases: grant, revoke, time-to-live, list. */
  readonly lease: Lease;
  private readonly config: ResolvedConfig;
  private readonly transport: Transport;
  private closed = false;

  constructor(config: ClientConfig) {
    this.config = resolveConfig(config);
    this.transport = new GrpcTransport(this.config);
    this.kv = new KV(() => this.service(KVDefinition));
    this.lease = new Lease(() => this.service(LeaseDefinition));
  }

  /** Creates a client and waits until it has connected, failing after `dialTimeoutMs`. */
  static async connect(config: ClientConfig): Promise<Client> {
    const client = new Client(config);
    try {
      await client.transport.ready(new Date(Date.now() + client.config.dialTimeoutMs));
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Starts a transaction: `client.txn().if(...).then(...).else(...).commit()`. */
  txn(): Txn {
    return new Txn(() => this.service(KVDefinition));
  }

  private service<D extends CompatServiceDefinition>(definition: D): ServiceClient<D> {
    if (this.closed) throw new ClientClosedError();
    return this.transport.service(definition);
  }

  /** Closes every connection; later calls reject with ClientClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
