import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { type DeepPartial, KVDefinition, type MemberListResponse } from "../../../gen/etcdserverpb/rpc.js";
import { type Endpoint, parseEndpoint } from "../../../src/core/config.js";
import { EndpointError, ErrNoLeader } from "../../../src/core/errors.js";
import { WireFailure } from "../../../src/core/wire-failure.js";
import { wireMethods } from "../../../src/pipeline/chain.js";
import { failoverMiddleware } from "../../../src/pipeline/failover.js";
import { type ConnectOutcome, type EndpointSlot, EndpointRotation } from "../../../src/wire/endpoints.js";
import { ScriptedClient } from "../support/scripted-wire.js";

/*
 * Which endpoint each attempt goes to: EndpointRotation on its own (a subclass of this file's
 * whose wire is only flags), then the failover step on top of it through the whole client over a
 * scripted wire. Quarantines are read from Date.now(), so every test runs on fake timers from a
 * fixed instant and moves the clock itself.
 */

/** src/wire/endpoints.ts keeps it private; a change there should be a deliberate one here too. */
const QUARANTINE_MS = 2_000;
const T0 = new Date("2030-01-01T00:00:00Z");

const RANGE = "/etcdserverpb.KV/Range";
const STATUS = "/etcdserverpb.Maintenance/Status";
const MEMBER_LIST = "/etcdserverpb.Cluster/MemberList";

const A = "a:2379";
const B = "b:2379";
const C = "c:2379";
const D = "d:2379";

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

let client: ScriptedClient | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

const endpoints = (addresses: string[]): Endpoint[] => addresses.map((a) => parseEndpoint(a, false));

interface FlagSlot extends EndpointSlot {
  down: boolean;
}

/** A rotation over a wire that is nothing but flags, which records what it opens and lets go of. */
class FlagRotation extends EndpointRotation<FlagSlot> {
  readonly opened: string[] = [];
  readonly released: string[] = [];
  /** Each endpoint abandoned, with why. */
  readonly abandoned: string[] = [];

  constructor(addresses: string[]) {
    super();
    this.setEndpoints(endpoints(addresses));
  }

  /** Until when (epoch ms) the endpoint is passed over; 0 when it is not. */
  quarantineEnds(address: string): number | undefined {
    return this.slot(address)?.quarantinedUntil;
  }

  setDown(address: string, down: boolean): void {
    const slot = this.slot(address);
    if (!slot) throw new Error(`no endpoint ${address}`);
    slot.down = down;
  }

  protected open(endpoint: Endpoint): FlagSlot {
    this.opened.push(endpoint.address);
    return { endpoint, quarantinedUntil: 0, down: false };
  }

  protected release(slot: FlagSlot): void {
    this.released.push(slot.endpoint.address);
  }

  protected abandon(slot: FlagSlot, why: string): void {
    this.abandoned.push(`${slot.endpoint.address}: ${why}`);
  }

  protected down(slot: FlagSlot): boolean {
    return slot.down;
  }

  isReady(address: string): boolean {
    return this.slot(address)?.down === false;
  }

  protected dial(slot: FlagSlot, _deadline: Date): Promise<ConnectOutcome> {
    return Promise.resolve(slot.down ? "failed" : "ready");
  }
}

const none: ReadonlySet<string> = new Set();
const except = (...addresses: string[]): ReadonlySet<string> => new Set(addresses);

/** Whether a promise has settled, without waiting for it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; result: Promise<T> } {
  let settled = false;
  const result = promise.finally(() => (settled = true));
  result.catch(() => undefined);
  return { settled: () => settled, result };
}

describe("EndpointRotation", () => {
  it("passes over a suspected endpoint at once, and abandons it (quarantined) only if its check finds it silent", async () => {
    const rotation = new FlagRotation([A, B]);
    let answer!: (answered: boolean) => void;
    rotation.suspect(A, () => new Promise((resolve) => (answer = resolve)));
    expect(rotation.pick(none)).toBe(B);
    expect(rotation.abandoned).toEqual([]);
    answer(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(rotation.abandoned).toEqual([`${A}: ${A} stopped answering`]);
    expect(rotation.quarantineEnds(A)).toBeGreaterThan(Date.now());
  });

  it("takes back a suspected endpoint that answers its check, abandoning nothing", async () => {
    const rotation = new FlagRotation([A, B]);
    rotation.suspect(A, () => Promise.resolve(true));
    await vi.advanceTimersByTimeAsync(0);
    expect(rotation.abandoned).toEqual([]);
    expect(rotation.quarantineEnds(A)).toBe(0);
    expect(rotation.pick(except(B))).toBe(A);
  });

  it("stays on the first endpoint while it serves", () => {
    const rotation = new FlagRotation([A, B, C]);
    expect([rotation.pick(none), rotation.pick(none), rotation.pick(none)]).toEqual([A, A, A]);
    expect(rotation.current).toBe(A);
  });

  it("moves the pin to the endpoint a call went on to, and keeps it there after the failed one recovers", () => {
    const rotation = new FlagRotation([A, B, C]);
    rotation.markFailed(A);
    expect(rotation.pick(except(A))).toBe(B);
    expect(rotation.current).toBe(B);
    vi.advanceTimersByTime(QUARANTINE_MS * 5);
    // A is healthy again, but calls do not flap back to it: they stay on B until B fails.
    expect(rotation.pick(none)).toBe(B);
  });

  it("looks for the next endpoint in list order from the pinned one, wrapping around", () => {
    const rotation = new FlagRotation([A, B, C, D]);
    expect(rotation.pick(except(A, B))).toBe(C);
    expect(rotation.pick(except(C))).toBe(D);
    expect(rotation.pick(except(C, D))).toBe(A);
    expect(rotation.pick(except(A, B, C, D))).toBeUndefined();
  });

  it("passes over an endpoint the wire knows is down without quarantining it", () => {
    const rotation = new FlagRotation([A, B]);
    rotation.setDown(A, true);
    expect(rotation.pick(none)).toBe(B);
    expect(rotation.quarantineEnds(A)).toBe(0);
  });

  it("passes over a failed endpoint for the quarantine period and takes it again from its last millisecond on", () => {
    const rotation = new FlagRotation([A, B, C]);
    rotation.markFailed(B);
    // pin: false, as a call for one member: the pin stays on A, so the scan always starts there.
    expect(rotation.pick(except(A), false)).toBe(C);
    vi.advanceTimersByTime(QUARANTINE_MS - 1);
    expect(rotation.pick(except(A), false)).toBe(C);
    vi.advanceTimersByTime(1);
    expect(rotation.pick(except(A), false)).toBe(B);
    expect(rotation.current).toBe(A);
  });

  it("starts the quarantine over when the endpoint fails again", () => {
    const rotation = new FlagRotation([A, B]);
    rotation.markFailed(A);
    vi.advanceTimersByTime(QUARANTINE_MS - 1);
    rotation.markFailed(A);
    vi.advanceTimersByTime(QUARANTINE_MS - 1);
    expect(rotation.pick(none, false)).toBe(B);
    vi.advanceTimersByTime(1);
    expect(rotation.pick(none, false)).toBe(A);
  });

  it("ends the quarantine at once when the endpoint serves a call", () => {
    const rotation = new FlagRotation([A, B]);
    rotation.markFailed(A);
    rotation.markHealthy(A);
    expect(rotation.pick(none, false)).toBe(A);
  });

  it("takes the endpoint whose quarantine ends first when every one is quarantined", () => {
    const rotation = new FlagRotation([A, B, C]);
    // Failed in the order C, A, B: C is out of quarantine first, though it is last in the list.
    rotation.markFailed(C);
    vi.advanceTimersByTime(100);
    rotation.markFailed(A);
    vi.advanceTimersByTime(100);
    rotation.markFailed(B);
    expect(rotation.pick(none)).toBe(C);
    expect(rotation.pick(except(C))).toBe(A);
    expect(rotation.pick(except(C, A))).toBe(B);
    expect(rotation.pick(except(A, B, C))).toBeUndefined();
  });

  it("keeps the pinned endpoint, and the state of every kept one, when the list changes", () => {
    const rotation = new FlagRotation([A, B, C]);
    expect(rotation.pick(except(A))).toBe(B);
    rotation.markFailed(C);
    rotation.setEndpoints(endpoints([C, B, D]));
    expect(rotation.endpoints).toEqual([C, B, D]);
    expect(rotation.current).toBe(B);
    expect(rotation.pick(none)).toBe(B);
    // C kept its slot, quarantine included: only D is new.
    expect(rotation.pick(except(B))).toBe(D);
    expect(rotation.opened).toEqual([A, B, C, D]);
    expect(rotation.released).toEqual([A]);
  });

  it("moves the pin to the first endpoint when the pinned one is dropped, and lets go of every dropped one once", () => {
    const rotation = new FlagRotation([A, B, C]);
    expect(rotation.pick(except(A))).toBe(B);
    rotation.setEndpoints(endpoints([D, C]));
    expect(rotation.current).toBe(D);
    expect(rotation.pick(none)).toBe(D);
    expect([...rotation.released].sort()).toEqual([A, B]);
    rotation.setEndpoints(endpoints([D, C]));
    expect([...rotation.released].sort()).toEqual([A, B]);
    rotation.close();
    expect([...rotation.released].sort()).toEqual([A, B, C, D]);
  });

  it("shares one dial per endpoint among the calls waiting for it, and quarantines one that timed out", async () => {
    let dials = 0;
    let finish: (outcome: ConnectOutcome) => void = () => undefined;
    class SlowRotation extends FlagRotation {
      protected override dial(): Promise<ConnectOutcome> {
        dials++;
        return new Promise((resolve) => (finish = resolve));
      }
    }
    const rotation = new SlowRotation([A, B]);
    const deadline = new Date(Date.now() + 1000);
    const first = rotation.connect(A, deadline);
    const second = rotation.connect(A, deadline);
    expect(dials).toBe(1);
    finish("timeout");
    expect(await Promise.all([first, second])).toEqual(["timeout", "timeout"]);
    expect(rotation.pick(none, false)).toBe(B);
  });

  it("answers a wait for an endpoint that is no longer listed with failed, without dialing", async () => {
    const rotation = new FlagRotation([A, B]);
    rotation.setEndpoints(endpoints([B]));
    expect(await rotation.connect(A, new Date(Date.now() + 1000))).toBe("failed");
  });
});

/** A rotation whose frozen endpoints never finish connecting: their dial ends only at its deadline. */
class FrozenRotation extends FlagRotation {
  readonly frozen = new Set<string>();
  dials = 0;

  override isReady(address: string): boolean {
    return !this.frozen.has(address) && super.isReady(address);
  }

  protected override dial(slot: FlagSlot, deadline: Date): Promise<ConnectOutcome> {
    this.dials++;
    if (!this.frozen.has(slot.endpoint.address)) return super.dial(slot, deadline);
    return new Promise((resolve) => setTimeout(() => resolve("timeout"), deadline.getTime() - Date.now()));
  }
}

describe("the failover step over a rotation with an endpoint that never connects", () => {
  const range = wireMethods(KVDefinition).range!;

  /** One unary Range through the failover step alone; it answers with the endpoint it was sent to. */
  function rangeThrough(pool: FrozenRotation, sent: string[]): Promise<unknown> {
    const failover = failoverMiddleware({
      pool,
      dialTimeoutMs: 1000,
      send: (endpoint) => {
        sent.push(endpoint);
        return Promise.resolve(endpoint);
      },
    });
    const call = { method: range, requestStream: false, responseStream: false, request: {}, next: undefined as never };
    return failover(call as ClientMiddlewareCall<unknown, unknown>, {})
      .next()
      .then((step) => step.value);
  }

  it("waits its share of dialTimeoutMs for it, then moves on and passes it over for the quarantine", async () => {
    const pool = new FrozenRotation([A, B]);
    pool.frozen.add(A);
    const sent: string[] = [];
    const first = track(rangeThrough(pool, sent));
    // Two endpoints to try: the frozen one gets half of the call's 1000 ms.
    await vi.advanceTimersByTimeAsync(499);
    expect(first.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await first.result).toBe(B);
    expect(sent).toEqual([B]);
    // Quarantined when its dial timed out: the next call is not held up by it again.
    pool.frozen.delete(A);
    expect(pool.quarantineEnds(A)).toBe(T0.getTime() + 500 + QUARANTINE_MS);
    expect(await rangeThrough(pool, sent)).toBe(B);
    expect(pool.dials).toBe(1);
  });

  // The dial timeout bounds the call, not each endpoint: shared among the endpoints still to try.
  it("fails within dialTimeoutMs when every endpoint is frozen", async () => {
    const pool = new FrozenRotation([A, B, C]);
    for (const endpoint of [A, B, C]) pool.frozen.add(endpoint);
    const sent: string[] = [];
    const call = track(rangeThrough(pool, sent));
    try {
      await vi.advanceTimersByTimeAsync(1000);
      expect(call.settled()).toBe(true);
      await expect(call.result).rejects.toThrow(/within 1000 ms/);
    } finally {
      // Lets the call end so that nothing of it outlives the test.
      await vi.advanceTimersByTimeAsync(10 * 1000);
    }
  });
});

/** An answer to Range that says which endpoint gave it. */
const answerFrom = (endpoint: string) => ({ kvs: [{ key: new TextEncoder().encode(endpoint) }] });

/** Where each attempt went, for the calls to `path`. */
const sentTo = (path: string = RANGE): string[] => client?.wire.sent.filter((c) => c.path === path).map((c) => c.endpoint) ?? [];

/** A client over three endpoints; the endpoints in `failing` refuse Range as never sent. */
function threeEndpoints(options: { dialTimeoutMs?: number } = {}): { client: ScriptedClient; failing: Set<string> } {
  const failing = new Set<string>();
  const c = new ScriptedClient({ endpoints: [A, B, C], retry: { maxRetries: 0 }, dialTimeoutMs: options.dialTimeoutMs ?? 1000 });
  c.wire.on(RANGE, (call) => {
    if (failing.has(call.endpoint)) throw new WireFailure(RANGE, Status.UNAVAILABLE, `${call.endpoint} refused the connection (scripted)`, "never-sent");
    return answerFrom(call.endpoint);
  });
  client = c;
  return { client: c, failing };
}

/** Quarantines `endpoint` the way a member that cannot serve does: a call for it alone fails with Unavailable. */
async function noLeaderAt(c: ScriptedClient, endpoint: string): Promise<void> {
  c.wire.on(STATUS, () => {
    throw new WireFailure(STATUS, Status.UNAVAILABLE, "etcdserver: no leader", "answered");
  });
  await expect(c.maintenance.status({ endpoint })).rejects.toBeInstanceOf(ErrNoLeader);
}

const keyOf = async (response: Promise<{ kvs: { keyString: string }[] }>) => (await response).kvs[0]?.keyString;

describe("failover across endpoints, through the client", () => {
  it("sends every call to the first endpoint while it serves", async () => {
    const { client: c } = threeEndpoints();
    for (let i = 0; i < 3; i++) expect(await keyOf(c.kv.get("k"))).toBe(A);
    expect(sentTo()).toEqual([A, A, A]);
  });

  it("moves a call that never reached the first endpoint to the next, and later calls stay there", async () => {
    const { client: c, failing } = threeEndpoints();
    failing.add(A);
    expect(await keyOf(c.kv.get("k"))).toBe(B);
    expect(sentTo()).toEqual([A, B]);
    failing.delete(A);
    expect(await keyOf(c.kv.get("k"))).toBe(B);
    // Past A's quarantine too: the pin moved, calls do not go back to A while B serves.
    await vi.advanceTimersByTimeAsync(QUARANTINE_MS + 1);
    expect(await keyOf(c.kv.get("k"))).toBe(B);
    expect(sentTo()).toEqual([A, B, B, B]);
  });

  it("sends nothing to an endpoint the wire knows is down", async () => {
    const { client: c } = threeEndpoints();
    c.wire.endpoints.setUp(A, false);
    expect(await keyOf(c.kv.get("k"))).toBe(B);
    expect(sentTo()).toEqual([B]);
  });

  it.each<[string, number, string]>([
    ["right after it failed", 0, C],
    ["until the last millisecond of its quarantine", QUARANTINE_MS - 1, C],
    ["once its quarantine is over", QUARANTINE_MS, B],
  ])("passes over a member that could not serve %s", async (_when, elapsed, expected) => {
    const { client: c, failing } = threeEndpoints();
    await noLeaderAt(c, B);
    await vi.advanceTimersByTimeAsync(elapsed);
    failing.add(A);
    expect(await keyOf(c.kv.get("k"))).toBe(expected);
    expect(sentTo()).toEqual([A, expected]);
  });

  it("uses the member whose quarantine ends first rather than failing when every one is quarantined", async () => {
    const { client: c } = threeEndpoints();
    for (const endpoint of [C, A, B]) {
      await noLeaderAt(c, endpoint);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(await keyOf(c.kv.get("k"))).toBe(C);
    expect(sentTo()).toEqual([C]);
  });

  it("keeps the pinned endpoint when a sync still lists it, and moves when it no longer does", async () => {
    const { client: c, failing } = threeEndpoints();
    failing.add(A);
    await c.kv.get("k");
    failing.delete(A);
    let members: DeepPartial<MemberListResponse> = {};
    c.wire.on(MEMBER_LIST, () => members);
    const member = (name: string, address: string) => ({ ID: BigInt(name.charCodeAt(0)), name, clientURLs: [`http://${address}`] });

    members = { members: [member("c", C), member("b", B), member("d", D)] };
    expect(await c.sync()).toEqual([C, B, D]);
    expect(await keyOf(c.kv.get("k"))).toBe(B);

    members = { members: [member("d", D), member("c", C)] };
    expect(await c.sync()).toEqual([D, C]);
    expect(await keyOf(c.kv.get("k"))).toBe(D);
    expect(sentTo(MEMBER_LIST)).toEqual([B, B]);
  });

  it("sends a call for one member there only, without moving the pin", async () => {
    const { client: c } = threeEndpoints();
    c.wire.on(STATUS, () => ({ version: "3.6.0" }));
    expect((await c.maintenance.status({ endpoint: C })).version).toBe("3.6.0");
    expect(sentTo(STATUS)).toEqual([C]);
    expect(await keyOf(c.kv.get("k"))).toBe(A);
  });

  it("never fails a call for one member over to another: it fails with EndpointError at the dial timeout", async () => {
    const { client: c } = threeEndpoints({ dialTimeoutMs: 1000 });
    c.wire.on(STATUS, () => ({ version: "3.6.0" }));
    c.wire.endpoints.setUp(B, false);
    const status = track(c.maintenance.status({ endpoint: B }));
    await vi.advanceTimersByTimeAsync(999);
    expect(status.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await status.result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EndpointError);
    expect(err).toMatchObject({ code: Status.UNAVAILABLE, endpoint: B });
    expect((err as Error).message).toMatch(/no etcd server reachable at b:2379 within 1000 ms/);
    expect(new Set(sentTo(STATUS))).toEqual(new Set([B]));
    expect(await keyOf(c.kv.get("k"))).toBe(A);
  });

  it("refuses a call for an endpoint the client does not have with EndpointError (INVALID_ARGUMENT), sending nothing", async () => {
    const { client: c } = threeEndpoints();
    c.wire.on(STATUS, () => ({ version: "3.6.0" }));
    const err = await c.maintenance.status({ endpoint: "z:2379" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EndpointError);
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT, endpoint: "z:2379" });
    expect((err as Error).message).toMatch(/z:2379 is not one of the client's endpoints \(a:2379, b:2379, c:2379\)/);
    expect(c.wire.sent).toEqual([]);
  });

  it("fails a call no endpoint can take with EndpointError naming them, at the dial timeout and not before", async () => {
    const { client: c } = threeEndpoints({ dialTimeoutMs: 1000 });
    for (const endpoint of [A, B, C]) c.wire.endpoints.setUp(endpoint, false);
    const get = track(c.kv.get("k"));
    await vi.advanceTimersByTimeAsync(999);
    expect(get.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await get.result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EndpointError);
    expect(err).toMatchObject({ code: Status.UNAVAILABLE });
    const message = (err as Error).message;
    expect(message).toMatch(/^no etcd server reachable at .* within 1000 ms: /);
    for (const endpoint of [A, B, C]) expect(message).toContain(endpoint);
    // It kept trying all of them while it waited.
    expect(new Set(sentTo())).toEqual(new Set([A, B, C]));
    expect(sentTo().length).toBeGreaterThan(3);
  });

  it("takes an endpoint that comes back before the dial timeout", async () => {
    const { client: c } = threeEndpoints({ dialTimeoutMs: 1000 });
    for (const endpoint of [A, B, C]) c.wire.endpoints.setUp(endpoint, false);
    const get = track(keyOf(c.kv.get("k")));
    await vi.advanceTimersByTimeAsync(500);
    expect(get.settled()).toBe(false);
    c.wire.endpoints.setUp(C, true);
    await vi.advanceTimersByTimeAsync(100);
    expect(await get.result).toBe(C);
  });
});
