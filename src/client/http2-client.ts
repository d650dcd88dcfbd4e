import diagnosticsChannel from "node:diagnostics_channel";
import { BaseClient } from "./base-client.js";
import type { ClientConfig, EntryTransports } from "../core/config.js";
import { GatewayWire } from "../wire/gateway/wire.js";
import { Http2Wire } from "../wire/http2/wire.js";

/** No "grpc": that would load @grpc/grpc-js, which this entry is for leaving out. */
const HTTP2_ENTRY: EntryTransports = { entry: "etcd-sdk/http2", transports: ["http2", "gateway"] };

/**
 * The Node entry's Client without @grpc/grpc-js: gRPC over node:http2 (the default here) or etcd's
 * HTTP gateway. The same API; it does not load grpc-js and nice-grpc (about 15 MB of RSS and some
 * start-up time), so neither does the process unless something else imports "etcd-sdk".
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    super(config, HTTP2_ENTRY, (resolved) => (resolved.transport === "gateway" ? new GatewayWire(resolved) : new Http2Wire(resolved)), diagnosticsChannel);
  }

  /** Creates a client and waits until it has reached etcd (see the Node entry's Client.connect). */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
