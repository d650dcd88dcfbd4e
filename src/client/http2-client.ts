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
 *
 * @example
 * ```ts
 * import { Client } from "etcd-sdk/http2";
 *
 * await using client = await Client.connect({ endpoints: ["http://127.0.0.1:2379"] });
 * await client.kv.put("example/http2/greeting", "hello");
 * const { kvs } = await client.kv.get("example/http2/greeting");
 * console.log(kvs[0]?.valueString); // "hello"
 * ```
 */
export class Client extends BaseClient {
  constructor(config: ClientConfig) {
    super(config, HTTP2_ENTRY, (resolved) => (resolved.transport === "gateway" ? new GatewayWire(resolved) : new Http2Wire(resolved)), diagnosticsChannel);
  }

  /**
   * Creates a client and waits until it has reached etcd (see the Node entry's Client.connect).
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
