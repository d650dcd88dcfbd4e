import {
  type Channel,
  ChannelCredentials,
  type ChannelOptions,
  type Client,
  type CompatServiceDefinition,
  createChannel,
  createClientFactory,
  waitForChannelReady,
} from "nice-grpc";
import { type DeadlineOptions, deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { errorMappingMiddleware } from "../middleware/errors.js";
import type { ResolvedConfig, TlsConfig } from "./config.js";
import { EndpointError } from "./errors.js";
import { Status } from "nice-grpc-common";

/** Options every RPC of the SDK can take on top of nice-grpc's own (signal, metadata). */
export type TransportCallOptions = DeadlineOptions;

export type ServiceClient<D extends CompatServiceDefinition> = Client<D, TransportCallOptions>;

/** What the API layer needs from a transport: typed service clients behind one middleware chain. */
export interface Transport {
  service<D extends CompatServiceDefinition>(definition: D): ServiceClient<D>;
  /** Resolves once a connection to etcd is up; rejects with EndpointError at the deadline. */
  ready(deadline: Date): Promise<void>;
  close(): void;
}

function pem(value: string | Uint8Array | undefined): Buffer | null {
  if (value === undefined) return null;
  return typeof value === "string" ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function credentials(secure: boolean, tls: TlsConfig | undefined): ChannelCredentials {
  if (!secure) return ChannelCredentials.createInsecure();
  return ChannelCredentials.createSsl(pem(tls?.ca), pem(tls?.key), pem(tls?.cert));
}

/** gRPC over @grpc/grpc-js for Node. */
export class GrpcTransport implements Transport {
  private readonly channel: Channel;
  private readonly clients = new Map<CompatServiceDefinition, unknown>();
  private readonly factory;
  private readonly endpoint: string;

  constructor(config: ResolvedConfig) {
    this.endpoint = config.endpoints[0]!.address;
    const options: ChannelOptions = {
      "grpc.max_send_message_length": config.maxCallSendMsgSize,
      "grpc.max_receive_message_length": config.maxCallRecvMsgSize,
    };
    if (config.tls?.serverName) options["grpc.ssl_target_name_override"] = config.tls.serverName;
    this.channel = createChannel(this.endpoint, credentials(config.secure, config.tls), options);
    // nice-grpc runs the middleware added last first: errors are mapped after the deadline applied.
    this.factory = createClientFactory()
      .use(deadlineMiddleware)
      .use(errorMappingMiddleware({ endpoint: () => this.endpoint }));
  }

  service<D extends CompatServiceDefinition>(definition: D): ServiceClient<D> {
    let client = this.clients.get(definition) as ServiceClient<D> | undefined;
    if (!client) {
      client = this.factory.create(definition, this.channel);
      this.clients.set(definition, client);
    }
    return client;
  }

  async ready(deadline: Date): Promise<void> {
    try {
      await waitForChannelReady(this.channel, deadline);
    } catch (err) {
      throw new EndpointError(`could not connect to etcd at ${this.endpoint} before the dial timeout`, Status.UNAVAILABLE, this.endpoint, {
        cause: err,
      });
    }
  }

  close(): void {
    this.channel.close();
  }
}
