import type { Endpoint } from "../core/config.js";

/** How long an endpoint that failed is passed over before it is tried again, in ms. */
const QUARANTINE_MS = 2_000;

/** How waiting for an endpoint's connection ended. */
export type ConnectOutcome = "ready" | "failed" | "timeout";

/** What the failover middleware needs to know about a transport's endpoints. */
export interface EndpointSet {
  /** host:port of every endpoint, in order. */
  readonly endpoints: string[];
  /** The endpoint calls go to now. */
  readonly current: string;
  setEndpoints(endpoints: Endpoint[]): void;
  pick(exclude: ReadonlySet<string>, pin?: boolean): string | undefined;
  /** Sets the endpoint aside for a while; `error` is why, where known. */
  markFailed(address: string, error?: unknown): void;
  markHealthy(address: string): void;
  /**
   * Passes the endpoint over while `answers` asks it whether it still answers: set aside if it
   * does not, taken back if it does.
   */
  suspect(address: string, answers: () => Promise<boolean>): void;
  /** Told when an endpoint is set aside (healthy false) or answers again after that. */
  onHealthChange?: (address: string, healthy: boolean, error: unknown) => void;
  /** Whether calls can go to the endpoint now, without waiting for a connection. */
  isReady(address: string): boolean;
  /**
   * Waits until the endpoint can take calls ("ready"), cannot ("failed": a call fails at once with
   * the transport's reason) or the deadline passed ("timeout": e.g. a frozen member).
   */
  connect(address: string, deadline: Date): Promise<ConnectOutcome>;
  /** Why the last connection to the endpoint failed, where the wire can say. */
  connectFailure(address: string): Promise<ConnectFailure | undefined>;
  close(): Promise<void>;
}

/** Why a connection failed, as the wire reports it. */
export interface ConnectFailure {
  message: string;
  /** Whether it failed in TLS: verifying the server's certificate, or the handshake. */
  tls: boolean;
}

export interface EndpointSlot {
  endpoint: Endpoint;
  /** Until when (epoch ms) the endpoint is passed over after a failure. */
  quarantinedUntil: number;
  /** The wait for a connection under way, which every call waiting for the endpoint shares. */
  connecting?: Promise<ConnectOutcome>;
  /** Until when (epoch ms) the endpoint is passed over while `suspect` checks it. */
  suspectedUntil?: number;
  /** The check `suspect` started, which later suspicions share. */
  checking?: Promise<void>;
}

/** Until when (epoch ms) a slot is passed over: set aside after a failure, or suspected. */
function passedOverUntil(slot: EndpointSlot): number {
  return Math.max(slot.quarantinedUntil, slot.suspectedUntil ?? 0);
}

/**
 * The choice of which endpoint a call goes to, whatever the wire. Calls stick to one endpoint
 * (as clientv3's pinned endpoint) until it fails; then the next healthy endpoint in the list takes
 * over, and the failed one is passed over for a while.
 */
export abstract class EndpointRotation<M extends EndpointSlot> implements EndpointSet {
  protected slots: M[] = [];
  private pinned = 0;

  /** What the wire keeps for a new endpoint (a channel, a base URL). */
  protected abstract open(endpoint: Endpoint): M;
  /** Lets go of what `open` made; resolves once its connection is gone, where the wire can tell. */
  protected abstract release(slot: M): void | Promise<void>;
  /** Whether the wire already knows the endpoint is down, quarantine aside. */
  protected abstract down(slot: M): boolean;
  abstract isReady(address: string): boolean;
  /** Waits for the wire's connection to the slot (see EndpointSet.connect). */
  protected abstract dial(slot: M, deadline: Date): Promise<ConnectOutcome>;
  /**
   * Fails every call in flight to the endpoint, its outcome unknown, and drops the connection, so
   * that the next call there connects anew. The endpoint stopped answering: left alone, a call
   * without a deadline of its own would wait until the connection's keepalive gave up on it.
   */
  protected abstract abandon(slot: M, why: string): void;

  get endpoints(): string[] {
    return this.slots.map((m) => m.endpoint.address);
  }

  get current(): string {
    return this.slots[this.pinned]!.endpoint.address;
  }

  protected slot(address: string): M | undefined {
    return this.slots.find((m) => m.endpoint.address === address);
  }

  /** Replaces the endpoint list, keeping the slots (and the pinned endpoint) that remain. */
  setEndpoints(endpoints: Endpoint[]): void {
    const current = this.slots[this.pinned]?.endpoint.address;
    const kept = new Map(this.slots.map((m) => [m.endpoint.address, m]));
    this.slots = endpoints.map((endpoint) => kept.get(endpoint.address) ?? this.open(endpoint));
    for (const [address, slot] of kept) if (!endpoints.some((e) => e.address === address)) this.release(slot);
    const stillThere = this.slots.findIndex((m) => m.endpoint.address === current);
    this.pinned = stillThere >= 0 ? stillThere : 0;
  }

  /**
   * The endpoint for the next attempt: the pinned one while it is healthy, else the next healthy
   * one after it, else (all failing) the one whose quarantine ends first. `exclude` holds the
   * endpoints this call already tried. `pin: false` leaves the pinned endpoint as it is (a call
   * meant for one member).
   */
  pick(exclude: ReadonlySet<string>, pin = true): string | undefined {
    const now = Date.now();
    const n = this.slots.length;
    let fallback: M | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.pinned + i) % n;
      const slot = this.slots[index]!;
      if (exclude.has(slot.endpoint.address)) continue;
      if (passedOverUntil(slot) <= now && !this.down(slot)) {
        if (pin) this.pinned = index;
        return slot.endpoint.address;
      }
      if (!fallback || passedOverUntil(slot) < passedOverUntil(fallback)) fallback = slot;
    }
    return fallback?.endpoint.address;
  }

  /**
   * See EndpointSet.connect. The wait outlives the call that started it and quarantines an
   * endpoint that did not answer by the deadline: were it cut short with the call, an endpoint
   * that never answers would take every call whose own deadline is shorter than the dial timeout.
   */
  connect(address: string, deadline: Date): Promise<ConnectOutcome> {
    const slot = this.slot(address);
    if (!slot) return Promise.resolve("failed");
    slot.connecting ??= this.dial(slot, deadline).then((outcome) => {
      slot.connecting = undefined;
      if (outcome === "timeout") this.markFailed(address);
      return outcome;
    });
    return slot.connecting;
  }

  /** Records that an endpoint could not serve; calls move on to the next one. */
  onHealthChange?: (address: string, healthy: boolean, error: unknown) => void;

  markFailed(address: string, error?: unknown): void {
    const slot = this.slot(address);
    if (!slot) return;
    const now = Date.now();
    const wasSetAside = slot.quarantinedUntil > now;
    slot.quarantinedUntil = now + QUARANTINE_MS;
    if (!wasSetAside) this.onHealthChange?.(address, false, error);
  }

  /** Records that an endpoint served a call. */
  markHealthy(address: string): void {
    const slot = this.slot(address);
    // Every answer comes here: a change, rare, is all that costs more than a comparison.
    if (!slot || (slot.quarantinedUntil === 0 && !slot.suspectedUntil)) return;
    const wasSetAside = slot.quarantinedUntil !== 0;
    slot.quarantinedUntil = 0;
    slot.suspectedUntil = 0;
    if (wasSetAside) this.onHealthChange?.(address, true, undefined);
  }

  /**
   * See EndpointSet.suspect. The endpoint is passed over at once, so that a call retried after
   * timing out on a frozen member goes elsewhere, but reported failed (and its calls in flight
   * failed, to be retried elsewhere where that is safe) only if the check finds it silent: a member
   * that was merely slow loses nothing.
   */
  suspect(address: string, answers: () => Promise<boolean>): void {
    const slot = this.slot(address);
    if (!slot || slot.checking) return;
    slot.suspectedUntil = Date.now() + QUARANTINE_MS;
    slot.checking = answers()
      .catch(() => false)
      .then((answered) => {
        slot.checking = undefined;
        if (answered) this.markHealthy(address);
        else if (this.slot(address) === slot) {
          const why = `${address} stopped answering`;
          this.markFailed(address, new Error(why));
          this.abandon(slot, why);
        }
      });
  }

  /** Why the last connection to the endpoint failed; a wire that knows says so. */
  connectFailure(_address: string): Promise<ConnectFailure | undefined> {
    return Promise.resolve(undefined);
  }

  /** Lets go of every endpoint; resolves once their connections are gone. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.release(slot)));
  }
}
