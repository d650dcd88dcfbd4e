import diagnosticsChannel from "node:diagnostics_channel";
import { BaseClient } from "./base-client.js";
import { ALL_TRANSPORTS, type ClientConfig } from "../core/config.js";
import { GatewayWire } from "../wire/gateway/wire.js";
import { GrpcWire } from "../wire/grpc/wire.js";
import { Http2Wire } from "../wire/http2/wire.js";

/**
 * A connection to an etcd cluster, as Go's clientv3.Client, over gRPC on `node:http2` (on
 * @grpc/grpc-js with `transport: "grpc"`, etcd's HTTP gateway with `transport: "gateway"`).
 * Create it with `new Client(config)` (connects lazily) or `await Client.connect(config)` (waits
 * for a connection within the dial timeout), and end it with `close()` or `await using`.
 *
 * @example
 * ```ts
 * import { Client } from "etcd-sdk";
 *
 * await using client = await Client.connect({ endpoints: ["http://127.0.0.1:2379"] });
 * await client.kv.put("example/client/greeting", "hello");
 * const { kvs } = await client.kv.get("example/client/greeting");
 * console.log(kvs[0]?.valueString); // "hello"
 * ```
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
   * authenticated when given credentials, and has checked versions when asked to. On failure the
   * client is closed.
   *
   * @example
   * ```ts
   * import { Client, EndpointError } from "etcd-sdk";
   *
   * try {
   *   await using client = await Client.connect({ endpoints: ["http://127.0.0.1:2379"], dialTimeoutMs: 2000 });
   *   console.log("connected to", client.endpoints);
   * } catch (err) {
   *   if (!(err instanceof EndpointError)) throw err;
   *   console.error("no etcd reachable:", err.message);
   * }
   * ```
   *
   * @throws {@link InvalidArgumentError} for a config it refuses, naming the field (thrown at once).
   * @throws {@link EndpointError} when no endpoint answered within `dialTimeoutMs`, or what
   * answered is not etcd; a {@link TlsError} when the TLS handshake failed.
   * @throws {@link ErrAuthFailed} when `username` and `password` are wrong.
   * @throws {@link OldClusterError} with `rejectOldCluster` or `minClusterVersion`, when a member
   * runs an older etcd.
   */
  static connect(config: ClientConfig): Promise<Client> {
    return BaseClient.opened(new Client(config));
  }
}
