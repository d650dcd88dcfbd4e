import { BaseClient } from "./base-client.js";
import type { ClientConfig } from "./config.js";
import { InvalidArgumentError } from "./errors.js";
import { GatewayWire } from "./gateway/wire.js";
import { Http2Wire } from "./http2-wire.js";

/**
 * The Node entry's Client without @grpc/grpc-js: gRPC over node:http2 (the default here) or etcd's
 * HTTP gateway. The same API; the process does not load grpc-js and nice-grpc, about 15 MB of RSS
 * and some start-up time.
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    if (config.transport === "grpc") {
      throw new InvalidArgumentError("transport", 'must be "http2" or "gateway" in the "etcd-sdk/http2" entry, which does not load @grpc/grpc-js');
    }
    super({ ...config, transport: config.transport ?? "http2" }, (resolved) => (resolved.transport === "gateway" ? new GatewayWire(resolved) : new Http2Wire(resolved)));
  }

  /** Creates a client and waits until it has reached etcd (see the Node entry's Client.connect). */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
