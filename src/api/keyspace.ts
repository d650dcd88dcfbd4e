import type { ClientMiddleware } from "nice-grpc-common";
import { KVDefinition, LeaseDefinition, WatchDefinition } from "../../gen/etcdserverpb/rpc.js";
import { namespaceMiddleware } from "../../middleware/namespace.js";
import { type Bytes, toBytes } from "../core/bytes.js";
import { KV } from "./kv.js";
import { Lease } from "./lease.js";
import type { ServiceFactory } from "../pipeline/call-pipeline.js";
import { Txn } from "./txn.js";
import { type Watcher, WatchHub, type WatchHubContext, type WatchOptions } from "./watch.js";

/** What a keyspace's watchers and keep-alives need of the client: its wire's limits and its diagnostics. */
export type KeyspaceContext = WatchHubContext;

/** What the concurrency recipes need: the KV, lease, txn and watch APIs of a client or a namespace. */
export type EtcdApi = Pick<Keyspace, "kv" | "lease" | "txn" | "watch">;

/**
 * The key-value, lease and watch APIs over one keyspace: the whole of etcd for a client, or the
 * keys under a prefix for `client.namespace(prefix)`, where every key is seen without the prefix.
 */
export class Keyspace {
  /** Key-value reads and writes. */
  readonly kv: KV;
  /** Leases: grant, revoke, time-to-live, list, keep-alive. */
  readonly lease: Lease;
  private readonly watches: WatchHub;
  /** One view per prefix, so that asking again does not pile up watch and keep-alive machinery. */
  private readonly views = new Map<string, Keyspace>();

  /** @internal */
  constructor(
    private readonly service: ServiceFactory,
    private readonly withMiddleware: (middleware: ClientMiddleware) => ServiceFactory,
    private readonly context: KeyspaceContext,
    private readonly prefix: Uint8Array = new Uint8Array(),
  ) {
    this.kv = new KV(() => service(KVDefinition));
    this.lease = new Lease(() => service(LeaseDefinition), context.diagnostics);
    this.watches = new WatchHub(() => service(WatchDefinition), context);
  }

  /**
   * Watches a key, or a range, prefix or from-key selection, from now or from `startRevision`.
   * Iterate the watcher with `for await`; leave the loop or abort `signal` to end it.
   */
  watch(key: Bytes, options: WatchOptions = {}): Watcher {
    this.service(WatchDefinition); // throws ClientClosedError once the client is closed

    return this.watches.watch(key, options);
  }

  /** Starts a transaction: `txn().if(...).then(...).else(...).commit()`. */
  txn(): Txn {
    return new Txn(() => this.service(KVDefinition));
  }

  /**
   * A view of the keys under `prefix` (within this keyspace's own), as clientv3/namespace: every
   * key, range, txn and watch event is seen without the prefix. It shares the client's connections.
   */
  namespace(prefix: Bytes): Keyspace {
    const bytes = toBytes(prefix, "namespace prefix");
    const full = new Uint8Array(this.prefix.length + bytes.length);
    full.set(this.prefix);
    full.set(bytes, this.prefix.length);
    const key = Array.from(full, (b) => b.toString(16).padStart(2, "0")).join("");
    let view = this.views.get(key);
    if (!view) {
      view = new Keyspace(this.withMiddleware(namespaceMiddleware(full)), this.withMiddleware, this.context, full);
      this.views.set(key, view);
    }
    return view;
  }

  /** @internal Ends the watchers and keep-alives of this keyspace and its views. */
  close(): void {
    this.watches.close();
    this.lease.close();
    for (const view of this.views.values()) view.close();
  }
}
