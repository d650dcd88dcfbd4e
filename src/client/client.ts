import diagnosticsChannel from "node:diagnostics_channel";
import { BaseClient } from "./base-client.js";
import { ALL_TRANSPORTS, type ClientConfig } from "../core/config.js";
import { GatewayWire } from "../wire/gateway/wire.js";
import { GrpcWire } from "../wire/grpc/wire.js";
import { Http2Wire } from "../wire/http2/wire.js";

/**
 * A connection to an etcd cluster, as Go's clientv3.Client, over gRPC (or etcd's HTTP gateway
 * with `transport: "gateway"`). Create it with `new Client(config)` (connects lazily) or
 * `await Client.connect(config)` (waits for a connection within the dial timeout), and end it
 * with `close()` or `await using`.
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    super(config, ALL_TRANSPORTS, (resolved) => {
      switch (resolved.transport) {
        case "gateway":
          return new GatewayWire(resolved);
        case "http2":
          return new Http2Wire(resolved);
        case "grpc":
          return new GrpcWire(resolved);
      }
    }, diagnosticsChannel);
  }

  /**
   * Creates a client and waits until it has connected (failing after `dialTimeoutMs`), has
   * authenticated when given credentials, and has checked versions when asked to.
   */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
