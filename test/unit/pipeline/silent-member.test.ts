import diagnosticsChannel from "node:diagnostics_channel";
import { Status } from "nice-grpc-common";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { RangeRequest } from "../../../gen/etcdserverpb/rpc.js";
import { CHANNELS } from "../../../src/core/diagnostics.js";
import { CallCanceledError, DeadlineExceededError } from "../../../src/core/errors.js";
import { WireFailure } from "../../../src/core/wire-failure.js";
import { ScriptedClient, type SentCall } from "../support/scripted-wire.js";

/*
 * A call given up on while its member was silent (its deadline passed) sends the next call to
 * another member at once; the member is reported failed only if it then fails to answer a probe
 * within a second, and a merely slow one is taken back. test/integration covers frozen members.
 */

const RANGE = "/etcdserverpb.KV/Range";
const never = new Promise<never>(() => {});

/** A client for this test only: closed when it ends. */
function scriptedClient(endpoints: string[]): ScriptedClient {
  const client = new ScriptedClient({ endpoints }, diagnosticsChannel);
  onTestFinished(() => void client.close());
  return client;
}

/** Every endpointFailed event published during the test. */
function failures(): unknown[] {
  const seen: unknown[] = [];
  const onMessage = (message: unknown) => seen.push(message);
  diagnosticsChannel.subscribe(CHANNELS.endpointFailed, onMessage);
  onTestFinished(() => void diagnosticsChannel.unsubscribe(CHANNELS.endpointFailed, onMessage));
  return seen;
}

/** The liveness probe: a linearizable count-only read, which a member without its leader never answers. */
const isProbe = (call: SentCall) => (call.request as RangeRequest).countOnly && !(call.request as RangeRequest).serializable;
const value = { kvs: [], count: 0n, more: false, header: { revision: 1n } };
const probeAnswer = () => value;

/** A client of a and b where a holds every read (`aAnswersProbe`: but answers the probe, as a slow member would). */
function withSilentA(aAnswersProbe: boolean): ScriptedClient {
  const client = scriptedClient(["a:2379", "b:2379"]);
  client.wire.on(RANGE, (call) => {
    if (call.endpoint === "b:2379") return isProbe(call) ? probeAnswer() : value;
    return isProbe(call) && aAnswersProbe ? probeAnswer() : never;
  });
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const readsAt = (c: ScriptedClient) => c.wire.sent.filter((call) => call.path === RANGE && !isProbe(call)).map((call) => call.endpoint);

describe("a call that timed out on a silent member", () => {
  it("sends the next call to another member at once, and reports the member failed once it misses the probe", async () => {
    const c = withSilentA(false);
    const failed = failures();
    await expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await c.kv.get("k");
    expect(readsAt(c)).toEqual(["a:2379", "b:2379"]);
    expect(failed).toEqual([]);
    await sleep(1_200);
    expect(failed).toMatchObject([{ endpoint: "a:2379" }]);
  });

  it("knows the deadline ended the call from the timer, not the clock, which can lag the timer by a millisecond", async () => {
    // Date stays real while the timers are faked: the deadline's timer fires with the clock far behind it.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    onTestFinished(() => void vi.useRealTimers());
    const c = withSilentA(false);
    const timedOut = expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await vi.advanceTimersByTimeAsync(100);
    await timedOut;
    await c.kv.get("k");
    expect(readsAt(c)).toEqual(["a:2379", "b:2379"]);
  });

  it("takes back a member that answers the probe (it was only slow), without reporting it failed", async () => {
    const c = scriptedClient(["a:2379", "b:2379"]);
    let slowReads = 1;
    c.wire.on(RANGE, (call) => (isProbe(call) ? probeAnswer() : call.endpoint === "a:2379" && slowReads-- > 0 ? never : value));
    const failed = failures();
    await expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await sleep(50);
    await c.kv.get("k");
    expect(readsAt(c)).toEqual(["a:2379", "a:2379"]);
    expect(c.wire.sent.filter(isProbe).map((call) => call.endpoint)).toEqual(["a:2379"]);
    expect(failed).toEqual([]);
  });

  it("is not what a call cancelled by its caller says: the next call goes to the same member", async () => {
    const c = withSilentA(false);
    const failed = failures();
    await expect(c.kv.get("k", { signal: AbortSignal.timeout(100) })).rejects.toBeInstanceOf(CallCanceledError);
    await expect(c.kv.get("k", { signal: AbortSignal.timeout(100) })).rejects.toBeInstanceOf(CallCanceledError);
    expect(readsAt(c)).toEqual(["a:2379", "a:2379"]);
    expect(c.wire.sent.filter(isProbe)).toEqual([]);
    expect(failed).toEqual([]);
  });
});

describe("calls in flight on a member found silent", () => {
  const PUT = "/etcdserverpb.KV/Put";

  it("fail once it misses the probe: a read is retried on another member, a write fails with its outcome unknown", async () => {
    const c = withSilentA(false);
    c.wire.on(PUT, () => never);
    const read = c.kv.get("k");
    const write = c.kv.put("k", "v").catch((err: unknown) => err);
    await sleep(20);
    // Another call times out on a: that is what starts the probe.
    await expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(read).resolves.toMatchObject({ count: 0n });
    expect(readsAt(c)).toEqual(["a:2379", "a:2379", "b:2379"]);
    expect(await write).toMatchObject({ outcome: "unknown", code: Status.UNAVAILABLE, endpoint: "a:2379" });
    expect(c.wire.sent.filter((call) => call.path === PUT).map((call) => call.endpoint)).toEqual(["a:2379"]);
  });

  it("fail when the member answers the probe only that it has no leader (cut off from its peers)", async () => {
    const c = scriptedClient(["a:2379", "b:2379"]);
    c.wire.on(RANGE, (call) => {
      if (call.endpoint === "b:2379") return value;
      return isProbe(call) ? Promise.reject(new WireFailure(RANGE, Status.UNAVAILABLE, "etcdserver: no leader", "answered")) : never;
    });
    const read = c.kv.get("k");
    await sleep(20);
    await expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(read).resolves.toMatchObject({ count: 0n });
    expect(readsAt(c)).toEqual(["a:2379", "a:2379", "b:2379"]);
  });

  it("go on when the member answers the probe: it was only slow", async () => {
    const c = scriptedClient(["a:2379", "b:2379"]);
    let release!: () => void;
    const slow = new Promise<typeof value>((resolve) => (release = () => resolve(value)));
    c.wire.on(RANGE, (call) => (isProbe(call) ? value : call.endpoint === "a:2379" ? slow : value));
    const read = c.kv.get("k");
    await sleep(20);
    await expect(c.kv.get("k", { deadline: 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await sleep(100);
    release();
    await expect(read).resolves.toMatchObject({ count: 0n });
    expect(readsAt(c)).toEqual(["a:2379", "a:2379"]);
  });
});
