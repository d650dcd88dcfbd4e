import { BaseClient } from "./base-client.js";
import type { ClientConfig, EntryTransports } from "../core/config.js";
import { GatewayWire } from "../wire/gateway/wire.js";

/** Only the gateway: gRPC needs Node. */
const WEB_ENTRY: EntryTransports = { entry: "etcd-sdk/web", transports: ["gateway"] };

/**
 * A connection to an etcd cluster over its HTTP/JSON gateway (etcd serves it on the client
 * URLs; a page on another origin needs etcd started with --cors). The API is that of the Node
 * entry's Client; see WireLimits for the little the gateway cannot do.
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    super(config, WEB_ENTRY, (resolved) => new GatewayWire(resolved));
  }

  /** Creates a client and waits until it has reached etcd (see the Node entry's Client.connect). */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
