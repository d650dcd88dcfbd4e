import type { Endpoint } from "./config.js";

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
  markFailed(address: string): void;
  markHealthy(address: string): void;
  /** Whether calls can go to the endpoint now, without waiting for a connection. */
  isReady(address: string): boolean;
  /**
   * Waits until the endpoint can take calls ("ready"), cannot ("failed": a call fails at once with
   * the transport's reason) or the deadline passed ("timeout": e.g. a frozen member).
   */
  connect(address: string, deadline: Date): Promise<ConnectOutcome>;
  close(): void;
}

export interface Member {
  endpoint: Endpoint;
  /** Until when (epoch ms) the endpoint is passed over after a failure. */
  quarantinedUntil: number;
  /** The wait for a connection under way, which every call waiting for the endpoint shares. */
  connecting?: Promise<ConnectOutcome>;
}

/**
 * The choice of which endpoint a call goes to, whatever the wire. Calls stick to one endpoint
 * (as clientv3's pinned endpoint) until it fails; then the next healthy endpoint in the list takes
 * over, and the failed one is passed over for a while.
 */
export abstract class EndpointRotation<M extends Member> implements EndpointSet {
  protected members: M[] = [];
  private pinned = 0;

  /** What the wire keeps for a new endpoint (a channel, a base URL). */
  protected abstract open(endpoint: Endpoint): M;
  /** Lets go of what `open` made. */
  protected abstract release(member: M): void;
  /** Whether the wire already knows the endpoint is down, quarantine aside. */
  protected abstract down(member: M): boolean;
  abstract isReady(address: string): boolean;
  /** Waits for the wire's connection to the member (see EndpointSet.connect). */
  protected abstract dial(member: M, deadline: Date): Promise<ConnectOutcome>;

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint.address);
  }

  get current(): string {
    return this.members[this.pinned]!.endpoint.address;
  }

  protected member(address: string): M | undefined {
    return this.members.find((m) => m.endpoint.address === address);
  }

  /** Replaces the endpoint list, keeping the members (and the pinned endpoint) that remain. */
  setEndpoints(endpoints: Endpoint[]): void {
    const current = this.members[this.pinned]?.endpoint.address;
    const kept = new Map(this.members.map((m) => [m.endpoint.address, m]));
    this.members = endpoints.map((endpoint) => kept.get(endpoint.address) ?? this.open(endpoint));
    for (const [address, member] of kept) if (!endpoints.some((e) => e.address === address)) this.release(member);
    const stillThere = this.members.findIndex((m) => m.endpoint.address === current);
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
    const n = this.members.length;
    let fallback: M | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.pinned + i) % n;
      const member = this.members[index]!;
      if (exclude.has(member.endpoint.address)) continue;
      if (member.quarantinedUntil <= now && !this.down(member)) {
        if (pin) this.pinned = index;
        return member.endpoint.address;
      }
      if (!fallback || member.quarantinedUntil < fallback.quarantinedUntil) fallback = member;
    }
    return fallback?.endpoint.address;
  }

  /**
   * See EndpointSet.connect. The wait outlives the call that started it and quarantines an
   * endpoint that did not answer by the deadline: were it cut short with the call, an endpoint
   * that never answers would take every call whose own deadline is shorter than the dial timeout.
   */
  connect(address: string, deadline: Date): Promise<ConnectOutcome> {
    const member = this.member(address);
    if (!member) return Promise.resolve("failed");
    member.connecting ??= this.dial(member, deadline).then((outcome) => {
      member.connecting = undefined;
      if (outcome === "timeout") this.markFailed(address);
      return outcome;
    });
    return member.connecting;
  }

  /** Records that an endpoint could not serve; calls move on to the next one. */
  markFailed(address: string): void {
    const member = this.member(address);
    if (member) member.quarantinedUntil = Date.now() + QUARANTINE_MS;
  }

  /** Records that an endpoint served a call. */
  markHealthy(address: string): void {
    const member = this.member(address);
    if (member) member.quarantinedUntil = 0;
  }

  close(): void {
    for (const member of this.members) this.release(member);
  }
}
