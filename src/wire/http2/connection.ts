import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders, type SecureClientSessionOptions } from "node:http2";
import { connect as netConnect, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { Endpoint, ResolvedConfig } from "../../core/config.js";
import { type ConnectFailure, type ConnectOutcome, EndpointRotation, type EndpointSlot } from "../endpoints.js";
import { tlsMaterial } from "../tls.js";
import { isTlsErrorCode } from "../tls-failure.js";

/**
 * The most a session may hold, in MB (Node's maxSessionMemory), past which Node refuses new streams
 * and a peer flooding it is cut off. Node's 10 MB default would fail unrelated calls behind a slow
 * snapshot reader; reading pauses per stream instead (StreamCall) and HTTP/2 flow control holds
 * the rest, so ten times that is room enough, and still a bound a server cannot lift.
 */
export const SESSION_MEMORY_MB = 100;

/** How long a closed session may finish its streams before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** Reconnect to a member that comes back within seconds, as the grpc-js channels are told to. */
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 2_000;

/** What a call gets instead of a stream when the connection cannot take one now. */
export interface NoConnection {
  reason: string;
  /** Whether the connection failed in TLS (certificate verification or the handshake). */
  tls: boolean;
}



export interface ConnectionOptions {
  /** TLS options for `http2.connect`, or undefined for plain TCP. */
  tls: SecureClientSessionOptions | undefined;
  keepAliveTimeMs: number;
  keepAliveTimeoutMs: number;
}

/**
 * One HTTP/2 connection to an etcd member, made on first use and again after it was lost. A
 * connection is ready once the server's SETTINGS arrived, so a member that accepts TCP but is
 * frozen counts as not answering. While calls are in flight it is pinged every keepAliveTimeMs,
 * and one unanswered for keepAliveTimeoutMs is closed, failing its calls (etcd refuses pings on an
 * idle connection). After a failed attempt, calls fail at once until the backoff has passed.
 */
export class Http2Connection {
  private session: ClientHttp2Session | undefined;
  private ready = false;
  private failure: ConnectFailure | undefined;
  private retryAt = 0;
  private backoffMs = INITIAL_BACKOFF_MS;
  /** Streams open on the current session: pings and the socket's ref only while there are any. */
  private active = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: ConnectionOptions,
  ) {}

  get isReady(): boolean {
    return this.ready && this.session !== undefined;
  }

  /** Why the last attempt to connect failed, until one succeeds. */
  get lastFailure(): ConnectFailure | undefined {
    return this.failure;
  }

  /** Whether the last attempt failed and the backoff has not passed yet. */
  get isDown(): boolean {
    return this.failure !== undefined && Date.now() < this.retryAt;
  }

  /** Opens a stream for a call, connecting first if needed; or why no stream can be opened now. */
  request(headers: OutgoingHttpHeaders): ClientHttp2Stream | NoConnection {
    const session = this.usableSession();
    if (!session) return { reason: `no connection: ${this.failure?.message ?? "client closed"}`, tls: this.failure?.tls ?? false };
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (err) {
      // The session closed meanwhile (a GOAWAY): the request never left.
      return { reason: `no connection: ${err instanceof Error ? err.message : String(err)}`, tls: false };
    }
    if (this.active++ === 0) this.busy(session);
    stream.once("close", () => {
      if (this.session === session && --this.active === 0) this.idle(session);
    });
    return stream;
  }

  /** Waits for the connection to be ready (see EndpointSet.connect). */
  dial(deadline: Date): Promise<ConnectOutcome> {
    if (this.isReady) return Promise.resolve("ready");
    if (!this.usableSession()) return Promise.resolve("failed");
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle("timeout"), Math.max(0, deadline.getTime() - Date.now()));
      const check = () => {
        if (this.isReady) settle("ready");
        else if (!this.session) settle("failed");
      };
      const settle = (outcome: ConnectOutcome) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(outcome);
      };
      this.waiters.add(check);
    });
  }

  /** Closes the connection; resolves once its session is gone (destroyed if it lingers a second). */
  close(): Promise<void> {
    this.closed = true;
    this.failure = { message: "client closed", tls: false };
    const { session, ready } = this;
    this.drop();
    if (!session || session.destroyed) return Promise.resolve();
    // A session that never became ready has nothing to finish; and Node emits no 'close' for one
    // destroyed before the server's SETTINGS came (a frozen member), so none is waited for.
    if (!ready) {
      session.destroy();
      return Promise.resolve();
    }
    // The session is unref'd so that an idle client never holds a process open; one that a
    // caller awaits close() on must, or Node exits with the promise unsettled.
    session.ref();
    return new Promise((resolve) => {
      const lingering = setTimeout(() => {
        session.destroy();
        resolve();
      }, CLOSE_GRACE_MS);
      lingering.unref();
      session.once("close", () => {
        clearTimeout(lingering);
        resolve();
      });
    });
  }

  /** Drops the connection, failing the calls on it; the next call connects anew. */
  abandon(why: string): void {
    const { session } = this;
    if (!session) return;
    this.failure = { message: why, tls: false };
    session.destroy();
    this.drop();
  }

  /** The session to use, opening one if there is none and the backoff allows. */
  private usableSession(): ClientHttp2Session | undefined {
    if (this.session || this.closed || this.isDown) return this.session;
    const { address, host, secure, socketPath } = this.endpoint;
    const { tls } = this.options;
    const limits = { maxSessionMemory: SESSION_MEMORY_MB };
    const servername = tls?.servername === undefined && !isIP(host) ? { servername: host } : {};
    const session = socketPath
      ? http2.connect(`${secure ? "https" : "http"}://localhost`, {
          ...limits,
          createConnection: () => (secure ? tlsConnect({ ...tls, ...servername, path: socketPath }) : netConnect(socketPath)),
        })
      : secure
        ? http2.connect(`https://${address}`, { ...limits, ...tls, ...servername })
        : http2.connect(`http://${address}`, limits);
    this.session = session;
    this.ready = false;
    this.active = 0;
    // Nothing keeps a process alive for a connection without calls.
    session.unref();
    session.once("remoteSettings", () => {
      if (this.session !== session) return;
      this.ready = true;
      this.failure = undefined;
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.notify();
    });
    session.on("error", (err: Error) => this.failed(session, err));
    // A TLS alert after the handshake (a client certificate the server refused) reaches only the
    // socket, and Node destroys the session without an event of its own.
    session.socket.once("error", (err: Error) => {
      this.failed(session, err);
      this.lose(session, err.message);
    });
    // A GOAWAY (the member shutting down, or too many pings): new calls go on a new session.
    session.once("goaway", () => this.lose(session, "connection closed by the server (GOAWAY)"));
    session.once("close", () => this.lose(session, "connection closed"));
    return session;
  }

  private failed(session: ClientHttp2Session, err: Error): void {
    if (this.session === session) this.failure = { message: err.message, tls: isTlsErrorCode((err as { code?: unknown }).code) };
  }

  private lose(session: ClientHttp2Session, why: string): void {
    if (this.session !== session) return;
    if (!this.ready) {
      this.failure ??= { message: why, tls: false };
      this.retryAt = Date.now() + this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    }
    this.drop();
  }

  private drop(): void {
    const session = this.session;
    this.session = undefined;
    this.ready = false;
    this.active = 0;
    clearTimeout(this.pingTimer);
    if (session && !session.destroyed) session.close();
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private busy(session: ClientHttp2Session): void {
    session.ref();
    this.schedulePing(session);
  }

  private idle(session: ClientHttp2Session): void {
    session.unref();
    clearTimeout(this.pingTimer);
  }

  private schedulePing(session: ClientHttp2Session): void {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this.ping(session), this.options.keepAliveTimeMs);
    this.pingTimer.unref();
  }

  private ping(session: ClientHttp2Session): void {
    if (this.session !== session || this.active === 0) return;
    const deadline = setTimeout(() => {
      if (this.session === session) this.abandon(`keepalive ping unanswered for ${this.options.keepAliveTimeoutMs} ms`);
    }, this.options.keepAliveTimeoutMs);
    deadline.unref();
    const sent = session.ping((err) => {
      clearTimeout(deadline);
      if (!err && this.session === session && this.active > 0) this.schedulePing(session);
    });
    if (!sent) clearTimeout(deadline);
  }
}

interface Http2Slot extends EndpointSlot {
  connection: Http2Connection;
}

/** One HTTP/2 connection per etcd endpoint; one whose last attempt failed is passed over. */
export class Http2EndpointPool extends EndpointRotation<Http2Slot> {
  private readonly options: ConnectionOptions;

  constructor(config: ResolvedConfig) {
    super();
    const tls = config.secure ? tlsMaterial(config.tls) : undefined;
    this.options = {
      tls: tls && {
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.key && tls.cert ? { key: tls.key, cert: tls.cert } : {}),
        ...(config.tls?.serverName ? { servername: config.tls.serverName } : {}),
        ALPNProtocols: ["h2"],
      },
      keepAliveTimeMs: config.keepAliveTimeMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    };
    this.setEndpoints(config.endpoints);
  }

  protected open(endpoint: Endpoint): Http2Slot {
    return { endpoint, connection: new Http2Connection(endpoint, this.options), quarantinedUntil: 0 };
  }

  protected release(slot: Http2Slot): Promise<void> {
    return slot.connection.close();
  }

  protected down(slot: Http2Slot): boolean {
    return slot.connection.isDown;
  }

  protected abandon(slot: Http2Slot, why: string): void {
    slot.connection.abandon(why);
  }

  /** The endpoint's connection; undefined once the endpoint left the list (sync, setEndpoints). */
  connection(address: string): Http2Connection | undefined {
    return this.slot(address)?.connection;
  }

  override connectFailure(address: string): Promise<ConnectFailure | undefined> {
    return Promise.resolve(this.connection(address)?.lastFailure);
  }

  isReady(address: string): boolean {
    return this.connection(address)?.isReady ?? false;
  }

  protected dial(slot: Http2Slot, deadline: Date): Promise<ConnectOutcome> {
    return slot.connection.dial(deadline);
  }
}
