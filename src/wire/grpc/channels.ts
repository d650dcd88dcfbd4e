import { ChannelCredentials, type ChannelOptions, createChannel } from "nice-grpc";
import type { Endpoint, ResolvedConfig, ResolvedTls } from "../../core/config.js";
import { Channel, Client as GrpcClient, Metadata } from "@grpc/grpc-js";
import { type ConnectFailure, type ConnectOutcome, EndpointRotation, type EndpointSlot } from "../endpoints.js";
import { deliveryOfGrpcStatus } from "./grpc-js-status.js";
import { tlsMaterial } from "../tls.js";

/**
 * What the probe of a failed channel calls: no method of etcd's, so that should the channel have
 * connected meanwhile, etcd only answers Unimplemented.
 */
const PROBE_PATH = "/etcdsdk.ConnectionProbe/LastError";

/** grpc-js connectivity states (its enum is not re-exported by nice-grpc). */
const READY = 2;
const TRANSIENT_FAILURE = 3;
const SHUTDOWN = 4;

function credentials(secure: boolean, tls: ResolvedTls | undefined): ChannelCredentials {
  if (!secure) return ChannelCredentials.createInsecure();
  const { ca, key, cert } = tlsMaterial(tls);
  return ChannelCredentials.createSsl(ca, key, cert);
}

/** Fails a call in flight, its outcome unknown, because its endpoint stopped answering. */
export type LoseCall = (why: string) => void;

/** An endpoint's channel and the calls in flight on it. */
export interface GrpcConnection {
  channel: Channel;
  inFlight: Set<LoseCall>;
}

interface GrpcSlot extends EndpointSlot, GrpcConnection {}

/**
 * One gRPC channel per etcd endpoint. Keepalive pings on each channel find members that died or
 * froze; a channel grpc-js reports as failing is passed over like a quarantined endpoint.
 */
export class GrpcEndpointPool extends EndpointRotation<GrpcSlot> {
  private readonly credentials: ChannelCredentials;
  private readonly channelOptions: ChannelOptions;

  constructor(config: ResolvedConfig) {
    super();
    this.credentials = credentials(config.secure, config.tls);
    this.channelOptions = {
      "grpc.max_send_message_length": config.maxCallSendMsgSize,
      "grpc.max_receive_message_length": config.maxCallRecvMsgSize,
      "grpc.keepalive_time_ms": config.keepAliveTimeMs,
      "grpc.keepalive_timeout_ms": config.keepAliveTimeoutMs,
      // Connections of their own: grpc-js would otherwise share them between clients, so that one
      // client's close or failure would reach into another's.
      "grpc.use_local_subchannel_pool": 1,
      // No retries inside grpc-js: its retry layer cost about 10 µs of CPU per call in the bench
      // (7% of a get) with no retry policy at all. The retry middleware repeats what is safe to
      // repeat, and the failover middleware resends the calls grpc-js retried transparently, those
      // that provably never reached etcd (a stream refused, or one that could not be started).
      "grpc.enable_retries": 0,
      // Reconnect to a member that comes back within seconds, not grpc's default of up to 2 minutes.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2_000,
      ...(config.tls?.serverName ? { "grpc.ssl_target_name_override": config.tls.serverName } : {}),
    };
    this.setEndpoints(config.endpoints);
  }

  protected open(endpoint: Endpoint): GrpcSlot {
    return { endpoint, channel: this.newChannel(endpoint), inFlight: new Set(), quarantinedUntil: 0 };
  }

  private newChannel(endpoint: Endpoint): Channel {
    // nice-grpc's createChannel reads an address as host[:port]; grpc-js takes unix:<path> itself.
    return endpoint.socketPath ? new Channel(endpoint.address, this.credentials, this.channelOptions) : createChannel(endpoint.address, this.credentials, this.channelOptions);
  }

  protected release(slot: GrpcSlot): void {
    slot.channel.close();
  }

  /**
   * grpc-js has no way to drop a channel's connection, and closing a channel lets its calls run
   * on: each call in flight is failed here, and the channel replaced by a new one.
   */
  protected abandon(slot: GrpcSlot, why: string): void {
    const lost = [...slot.inFlight];
    slot.inFlight.clear();
    const { channel } = slot;
    slot.channel = this.newChannel(slot.endpoint);
    for (const lose of lost) lose(why);
    channel.close();
  }

  protected down(slot: GrpcSlot): boolean {
    return slot.channel.getConnectivityState(false) === TRANSIENT_FAILURE;
  }

  /** The endpoint's channel and its calls; undefined once the endpoint left the list (sync, setEndpoints). */
  connection(address: string): GrpcConnection | undefined {
    return this.slot(address);
  }

  private channel(address: string): Channel | undefined {
    return this.slot(address)?.channel;
  }

  /** Whether the endpoint has a live connection, without starting one. */
  isReady(address: string): boolean {
    return this.channel(address)?.getConnectivityState(false) === READY;
  }

  /**
   * Why the endpoint's channel failed to connect. grpc-js keeps the reason to itself but gives it
   * to a call on a failed channel, which fails at once without sending anything.
   */
  override connectFailure(address: string): Promise<ConnectFailure | undefined> {
    const channel = this.channel(address);
    if (!channel || channel.getConnectivityState(false) !== TRANSIENT_FAILURE) return Promise.resolve(undefined);
    const probe = new GrpcClient("", null as never, { channelOverride: channel });
    return new Promise((resolve) => {
      const deadline = new Date(Date.now() + 1000);
      probe.makeUnaryRequest(PROBE_PATH, () => Buffer.alloc(0), () => undefined, {}, new Metadata(), { deadline }, (err) => {
        const failure = err && deliveryOfGrpcStatus(err.code, err.details);
        resolve(failure?.delivery === "never-sent" ? { message: err!.details, tls: failure.tls ?? false } : undefined);
      });
    });
  }

  /** Starts connecting if needed and waits for the connection. */
  protected dial({ channel }: GrpcSlot, deadline: Date): Promise<ConnectOutcome> {
    return new Promise((resolve) => {
      const check = (): void => {
        const state = channel.getConnectivityState(true);
        if (state === READY) return resolve("ready");
        if (state === TRANSIENT_FAILURE) return resolve("failed");
        if (state === SHUTDOWN) return resolve("failed");
        if (Date.now() >= deadline.getTime()) return resolve("timeout");
        channel.watchConnectivityState(state, deadline, (err) => (err ? resolve("timeout") : check()));
      };
      check();
    });
  }
}
