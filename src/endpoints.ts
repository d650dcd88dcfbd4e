import { type Channel, ChannelCredentials, type ChannelOptions, createChannel } from "nice-grpc";
import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import type { Endpoint, ResolvedConfig, TlsConfig } from "./config.js";
import { InvalidArgumentError } from "./errors.js";

/** grpc-js connectivity states (its enum is not re-exported by nice-grpc). */
const READY = 2;
const TRANSIENT_FAILURE = 3;
const SHUTDOWN = 4;

/** How long an endpoint that failed is passed over before it is tried again, in ms. */
const QUARANTINE_MS = 2_000;

function pem(value: string | Uint8Array | undefined): Buffer | null {
  if (value === undefined) return null;
  return typeof value === "string" ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function credentials(secure: boolean, tls: TlsConfig | undefined): ChannelCredentials {
  if (!secure) return ChannelCredentials.createInsecure();
  const [ca, key, cert] = [pem(tls?.ca), pem(tls?.key), pem(tls?.cert)];
  if ((key === null) !== (cert === null)) {
    throw new InvalidArgumentError(key === null ? "tls.key" : "tls.cert", "is needed too: mutual TLS takes a certificate and its key");
  }
  // Load the material now, so that a bad file is an error at construction, not a failing dial.
  const load = (what: string, check: () => unknown) => {
    try {
      check();
    } catch (err) {
      throw new InvalidArgumentError(what, `could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (ca) load("tls.ca", () => new X509Certificate(ca));
  if (key && cert) load("tls.cert and tls.key", () => createSecureContext({ key, cert }));
  return ChannelCredentials.createSsl(ca, key, cert);
}

interface Member {
  endpoint: Endpoint;
  channel: Channel;
  /** Until when (epoch ms) the endpoint is passed over after a failure. */
  quarantinedUntil: number;
}

/**
 * One gRPC channel per etcd endpoint and the choice of which one a call goes to. Calls stick to
 * one endpoint (as clientv3's pinned endpoint) until it fails; then the next healthy endpoint in
 * the list takes over. Keepalive pings on each channel find members that died or froze.
 */
export class EndpointPool {
  private members: Member[] = [];
  private pinned = 0;
  private readonly credentials: ChannelCredentials;
  private readonly channelOptions: ChannelOptions;

  constructor(config: ResolvedConfig) {
    this.credentials = credentials(config.secure, config.tls);
    this.channelOptions = {
      "grpc.max_send_message_length": config.maxCallSendMsgSize,
      "grpc.max_receive_message_length": config.maxCallRecvMsgSize,
      "grpc.keepalive_time_ms": config.keepAliveTimeMs,
      "grpc.keepalive_timeout_ms": config.keepAliveTimeoutMs,
      // Connections of their own: grpc-js would otherwise share them between clients, so that one
      // client's close or failure would reach into another's.
      "grpc.use_local_subchannel_pool": 1,
      // Reconnect to a member that comes back within seconds, not grpc's default of up to 2 minutes.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2_000,
      ...(config.tls?.serverName ? { "grpc.ssl_target_name_override": config.tls.serverName } : {}),
    };
    this.setEndpoints(config.endpoints);
  }

  /** host:port of every endpoint, in order. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint.address);
  }

  /** The endpoint calls go to now. */
  get current(): string {
    return this.members[this.pinned]!.endpoint.address;
  }

  /** Replaces the endpoint list, keeping the channels (and the pinned endpoint) that remain. */
  setEndpoints(endpoints: Endpoint[]): void {
    const current = this.members[this.pinned]?.endpoint.address;
    const kept = new Map(this.members.map((m) => [m.endpoint.address, m]));
    this.members = endpoints.map(
      (endpoint) => kept.get(endpoint.address) ?? { endpoint, channel: createChannel(endpoint.address, this.credentials, this.channelOptions), quarantinedUntil: 0 },
    );
    for (const [address, member] of kept) if (!endpoints.some((e) => e.address === address)) member.channel.close();
    const stillThere = this.members.findIndex((m) => m.endpoint.address === current);
    this.pinned = stillThere >= 0 ? stillThere : 0;
  }

  /** The endpoint's channel; undefined once the endpoint left the list (sync, setEndpoints). */
  channel(address: string): Channel | undefined {
    return this.members.find((m) => m.endpoint.address === address)?.channel;
  }

  /**
   * The endpoint for the next attempt: the pinned one while it is healthy, else the next healthy
   * one after it, else (all failing) the one whose quarantine ends first. `exclude` holds the
   * endpoints this call already tried. `pin: false` leaves the pinned endpoint as it is (a call
   * meant for one member).
   */
  pick(exclude: ReadonlySet<string>, pin = true): string | undefined {
    const now = Date.now();
    const n = this.members.length;
    let fallback: Member | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.pinned + i) % n;
      const member = this.members[index]!;
      if (exclude.has(member.endpoint.address)) continue;
      const failing = member.quarantinedUntil > now || member.channel.getConnectivityState(false) === TRANSIENT_FAILURE;
      if (!failing) {
        if (pin) this.pinned = index;
        return member.endpoint.address;
      }
      if (!fallback || member.quarantinedUntil < fallback.quarantinedUntil) fallback = member;
    }
    return fallback?.endpoint.address;
  }

  /** Records that an endpoint could not serve; calls move on to the next one. */
  markFailed(address: string): void {
    const member = this.members.find((m) => m.endpoint.address === address);
    if (member) member.quarantinedUntil = Date.now() + QUARANTINE_MS;
  }

  /** Records that an endpoint served a call. */
  markHealthy(address: string): void {
    const member = this.members.find((m) => m.endpoint.address === address);
    if (member) member.quarantinedUntil = 0;
  }

  /** Whether the endpoint has a live connection, without starting one. */
  isReady(address: string): boolean {
    return this.channel(address)?.getConnectivityState(false) === READY;
  }

  /**
   * Starts connecting if needed and waits until the connection is up ("ready"), has failed
   * ("failed": a call now fails at once with the transport's reason) or the deadline passed
   * ("timeout": e.g. a frozen member that accepts TCP but never speaks HTTP/2).
   */
  connect(address: string, deadline: Date): Promise<"ready" | "failed" | "timeout"> {
    const channel = this.channel(address);
    if (!channel) return Promise.resolve("failed");
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

  close(): void {
    for (const member of this.members) member.channel.close();
  }
}
