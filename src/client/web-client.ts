import { BaseClient } from "./base-client.js";
import type { ClientConfig, EntryTransports } from "../core/config.js";
import { GatewayWire } from "../wire/gateway/wire.js";

/** Only the gateway: gRPC needs Node. */
const WEB_ENTRY: EntryTransports = { entry: "etcd-sdk/web", transports: ["gateway"] };

/**
 * A connection to an etcd cluster over its HTTP/JSON gateway (etcd serves it on the client
 * URLs; a page on another origin needs etcd started with --cors). The API is that of the Node
 * entry's Client; see WireLimits for the little the gateway cannot do.
 *
 * @example
 * ```ts
 * import { Client } from "etcd-sdk/web";
 *
 * const client = new Client({ endpoints: ["http://127.0.0.1:2379"] });
 * try {
 *   await client.kv.put("example/web/greeting", "hello");
 *   const { kvs } = await client.kv.get("example/web/greeting");
 *   console.log(kvs[0]?.valueString); // "hello"
 * } finally {
 *   await client.close();
 * }
 * ```
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    super(config, WEB_ENTRY, (resolved) => new GatewayWire(resolved));
  }

  /**
   * Creates a client and waits until it has reached etcd (see the Node entry's Client.connect).
   *
   * @throws {@link InvalidArgumentError} for a config it refuses, naming the field (thrown at once).
   * @throws {@link EndpointError} when no endpoint answered within `dialTimeoutMs`, or what
   * answered is not etcd.
   * @throws {@link ErrAuthFailed} when `username` and `password` are wrong.
   * @throws {@link OldClusterError} with `rejectOldCluster` or `minClusterVersion`, when a member
   * runs an older etcd.
   */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
