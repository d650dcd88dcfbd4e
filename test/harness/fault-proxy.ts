import { createConnection, createServer, type Server, type Socket } from "node:net";

/** Where a proxy forwards to: a TCP port on loopback, or a unix socket (a member inside a network namespace). */
export type ProxyTarget = { port: number; host?: string } | { path: string };

/**
 * What a proxy does with the traffic it carries:
 * - "pass": forwards it (after the added latency, if any);
 * - "blackhole": forwards nothing in either direction and closes nothing, as a network that drops
 *   every packet: the peers' writes pile up unread, new connections are accepted and then hear
 *   nothing. What was held is delivered when the proxy passes again, as TCP would retransmit it;
 * - "refuse": resets (RST) every connection at once, new ones as soon as they are accepted.
 */
export type FaultMode = "pass" | "blackhole" | "refuse";

/** Bytes a direction may hold in its latency queue before it stops reading its source. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** One direction of a proxied connection: reads `from`, writes `to`, in order, after the proxy's latency. */
class Pipe {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queuedBytes = 0;
  /** When the last queued chunk is due: a later chunk is never due before it, so order holds. */
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private sourceEnded = false;
  private sinkFull = false;
  forwarded = 0;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly proxy: FaultProxy,
  ) {
    from.on("data", (chunk: Buffer) => this.take(chunk));
    from.on("end", () => {
      this.sourceEnded = true;
      this.flush();
    });
    to.on("drain", () => {
      this.sinkFull = false;
      this.flush();
    });
  }

  private take(chunk: Buffer): void {
    const { latencyMs, jitterMs } = this.proxy;
    const delay = latencyMs + (jitterMs > 0 ? Math.random() * jitterMs : 0);
    const due = Math.max(Date.now() + delay, this.lastDue);
    this.lastDue = due;
    this.queue.push({ chunk, due });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.from.pause();
    this.flush();
  }

  /** Writes what is due, unless held; plans the next write. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.proxy.mode !== "pass" || this.to.destroyed) return;
    const now = Date.now();
    while (this.queue.length > 0 && !this.sinkFull) {
      const next = this.queue[0]!;
      if (next.due > now) {
        this.timer = setTimeout(() => this.flush(), next.due - now);
        return;
      }
      this.queue.shift();
      this.queuedBytes -= next.chunk.length;
      this.forwarded += next.chunk.length;
      if (!this.to.write(next.chunk)) this.sinkFull = true;
    }
    if (this.queue.length === 0 && this.sourceEnded && !this.to.writableEnded) this.to.end();
    if (!this.sinkFull && this.queuedBytes <= MAX_QUEUED_BYTES && this.from.isPaused()) this.from.resume();
  }

  hold(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.from.pause();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Ends a socket abruptly: with a TCP RST, or (a unix socket has none) by closing it. */
function abort(socket: Socket, tcp: boolean): void {
  if (socket.destroyed) return;
  if (tcp) socket.resetAndDestroy();
  else socket.destroy();
}

/** A client connection and the proxy's connection to the target. */
class Link {
  readonly up: Pipe;
  readonly down: Pipe;
  /** A side closed abruptly while the proxy held traffic: the other side learns it when traffic flows again. */
  private brokenWhileHeld = false;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    /** Whether the target is on TCP (else a unix socket). */
    private readonly tcpUpstream: boolean,
    private readonly proxy: FaultProxy,
  ) {
    this.up = new Pipe(client, upstream, proxy);
    this.down = new Pipe(upstream, client, proxy);
    const broken = (other: Socket) => () => {
      if (this.proxy.mode === "blackhole") this.brokenWhileHeld = true;
      else abort(other, other === client || tcpUpstream);
    };
    // An abrupt close (a reset, a refused connection to the target; not an orderly FIN, which the
    // pipes pass on in order) resets the other side too, as a member that went away would.
    client.on("error", () => undefined).on("close", (hadError) => hadError && broken(upstream)());
    upstream.on("error", () => undefined).on("close", (hadError) => hadError && broken(client)());
    client.on("close", () => this.closed());
    upstream.on("close", () => this.closed());
  }

  private closed(): void {
    if (this.client.destroyed && this.upstream.destroyed) {
      this.up.stop();
      this.down.stop();
      this.proxy.forget(this);
    }
  }

  apply(): void {
    switch (this.proxy.mode) {
      case "pass":
        if (this.brokenWhileHeld) return this.reset();
        this.up.flush();
        this.down.flush();
        return;
      case "blackhole":
        this.up.hold();
        this.down.hold();
        return;
      case "refuse":
        return this.reset();
    }
  }

  /** Ends both sides with a TCP RST. */
  reset(): void {
    abort(this.client, true);
    abort(this.upstream, this.tcpUpstream);
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of one target (an etcd member's client port), whose traffic a
 * test can pass, hold (blackhole), reset, or delay. It works below HTTP, so gRPC (HTTP/2) and etcd's
 * HTTP gateway on the same port go through it alike.
 */
export class FaultProxy {
  mode: FaultMode = "pass";
  latencyMs = 0;
  jitterMs = 0;
  private readonly links = new Set<Link>();
  private accepted = 0;
  /** Bytes forwarded by connections closed since. */
  private closedUp = 0;
  private closedDown = 0;

  private constructor(
    private readonly server: Server,
    private readonly target: ProxyTarget,
    readonly port: number,
  ) {}

  /** Starts a proxy to `target`, listening on `port` (any free one by default). */
  static async start(target: ProxyTarget, port = 0): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => proxy!.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the fault proxy got no TCP port");
    proxy = new FaultProxy(server, target, address.port);
    return proxy;
  }

  /** host:port, as the SDK's endpoints take it. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections open through the proxy now. */
  get openConnections(): number {
    return this.links.size;
  }

  /** Connections accepted since the proxy started. */
  get acceptedConnections(): number {
    return this.accepted;
  }

  /** Bytes forwarded since the start, client to target and back (held or queued bytes not yet). */
  get forwardedBytes(): { up: number; down: number } {
    let up = 0;
    let down = 0;
    for (const link of this.links) {
      up += link.up.forwarded;
      down += link.down.forwarded;
    }
    return { up: up + this.closedUp, down: down + this.closedDown };
  }

  /** Forwards traffic again (delivering what a blackhole held); latency stays as set. */
  pass(): void {
    this.setMode("pass");
  }

  /** Stops forwarding in both directions without closing anything. */
  blackhole(): void {
    this.setMode("blackhole");
  }

  /** Resets every connection now and every new one until `pass()`. */
  refuse(): void {
    this.setMode("refuse");
  }

  /** Resets (RST) every open connection once; new connections pass as before. */
  reset(): void {
    for (const link of [...this.links]) link.reset();
  }

  /** Delays every chunk by `ms` plus up to `jitterMs` more, in both directions, keeping their order. */
  latency(ms: number, jitterMs = 0): void {
    if (!(ms >= 0 && jitterMs >= 0)) throw new RangeError(`latency and jitter must be non-negative, got ${ms} and ${jitterMs}`);
    this.latencyMs = ms;
    this.jitterMs = jitterMs;
  }

  /** No faults: passes traffic without added latency. */
  heal(): void {
    this.latency(0);
    this.pass();
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of [...this.links]) link.destroy();
    await closed;
  }

  /** @internal A link whose two sockets closed. */
  forget(link: Link): void {
    if (!this.links.delete(link)) return;
    this.closedUp += link.up.forwarded;
    this.closedDown += link.down.forwarded;
  }

  private setMode(mode: FaultMode): void {
    this.mode = mode;
    for (const link of [...this.links]) link.apply();
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.mode === "refuse") {
      client.on("error", () => undefined);
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const tcp = !("path" in this.target);
    const upstream = "path" in this.target ? createConnection({ path: this.target.path, allowHalfOpen: true }) : createConnection({ port: this.target.port, host: this.target.host ?? "127.0.0.1", allowHalfOpen: true, noDelay: true });
    const link = new Link(client, upstream, tcp, this);
    this.links.add(link);
    link.apply();
  }
}
