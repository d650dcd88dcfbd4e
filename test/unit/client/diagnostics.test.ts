import diagnosticsChannel from "node:diagnostics_channel";
import { Status } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import { CHANNELS, type CallContext, type Logger } from "../../../src/core/diagnostics.js";
import { WireFailure } from "../../../src/core/wire-failure.js";
import { ScriptedClient } from "../support/scripted-wire.js";

/*
 * What the client publishes on node:diagnostics_channel and tells its logger, with the whole client
 * above a scripted wire: each event where it happens, and nothing on the hot path when no one
 * listens. test/integration/all-transports/diagnostics.test.ts sees the same against etcd.
 */

const RANGE = "/etcdserverpb.KV/Range";

let client: ScriptedClient | undefined;
const unsubscribe: (() => void)[] = [];
afterEach(() => {
  client?.close();
  client = undefined;
  for (const undo of unsubscribe.splice(0)) undo();
});

/** Every message published on a channel from now on. */
function listen(name: string): unknown[] {
  const seen: unknown[] = [];
  const onMessage = (message: unknown) => seen.push(message);
  diagnosticsChannel.subscribe(name, onMessage);
  unsubscribe.push(() => diagnosticsChannel.unsubscribe(name, onMessage));
  return seen;
}

/** A logger that keeps what it was told, as "level: message". */
function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("diagnostics", () => {
  it("traces each attempt of a call on etcd-sdk:call, with its method, endpoint and outcome", async () => {
    const events: string[] = [];
    const contexts: CallContext[] = [];
    const handlers = {
      start: (c: object) => (contexts.push(c as CallContext), events.push("start")),
      end: () => events.push("end"),
      asyncStart: () => events.push("asyncStart"),
      asyncEnd: () => events.push("asyncEnd"),
      error: () => events.push("error"),
    };
    const tracing = diagnosticsChannel.tracingChannel(CHANNELS.call);
    tracing.subscribe(handlers);
    unsubscribe.push(() => tracing.unsubscribe(handlers));
    client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"], retry: { maxRetries: 0 } }, diagnosticsChannel);
    let first = true;
    client.wire.on(RANGE, (call) => {
      if (first && call.endpoint === "a:2379") {
        first = false;
        throw new WireFailure(RANGE, Status.UNAVAILABLE, "no connection (scripted)", "never-sent");
      }
      return { count: 1n };
    });
    expect((await client.kv.get("k")).count).toBe(1n);
    // The attempt at a failed, the one at b answered.
    expect(contexts.map((c) => [c.method, c.endpoint])).toEqual([
      [RANGE, "a:2379"],
      [RANGE, "b:2379"],
    ]);
    expect(events).toEqual(["start", "end", "error", "asyncStart", "asyncEnd", "start", "end", "asyncStart", "asyncEnd"]);
    expect(contexts[0]!.error).toBeInstanceOf(WireFailure);
  });

  it("publishes an endpoint set aside and its recovery, and tells the logger at warn and info", async () => {
    const failed = listen(CHANNELS.endpointFailed);
    const recovered = listen(CHANNELS.endpointRecovered);
    const { logger, lines } = recordingLogger();
    client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"], retry: { maxRetries: 0 }, logger }, diagnosticsChannel);
    let down = true;
    client.wire.on(RANGE, (call) => {
      if (down && call.endpoint === "a:2379") throw new WireFailure(RANGE, Status.UNAVAILABLE, "member stopped (scripted)", "answered");
      return { count: 1n };
    });
    await expect(client.kv.get("k")).rejects.toThrow();
    expect(failed).toMatchObject([{ endpoint: "a:2379" }]);
    expect(lines).toContain("warn: etcd endpoint set aside after a failure");
    down = false;
    // a is passed over while set aside; b answers, and recovers nothing (it was never set aside).
    await client.kv.get("k");
    expect(recovered).toEqual([]);
    client.wire.endpoints.markHealthy("a:2379");
    expect(recovered).toMatchObject([{ endpoint: "a:2379" }]);
    expect(lines).toContain("info: etcd endpoint answers again");
  });

  it("publishes a watch stream broken and resumed, with each watcher's revision", async () => {
    const broken = listen(CHANNELS.watchBroken);
    const resumed = listen(CHANNELS.watchResumed) as { resumeRevisions: Map<number, bigint> }[];
    client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"] }, diagnosticsChannel);
    const watcher = client.watch("k");
    const stream = await client.wire.nextStream();
    const create = (await stream.nextRequest()) as { requestUnion: { createRequest: { watchId: bigint } } };
    const id = create.requestUnion.createRequest.watchId;
    stream.respond({ header: { revision: 10n }, watchId: id, created: true });
    stream.respond({ header: { revision: 11n }, watchId: id, events: [{ kv: { key: new TextEncoder().encode("k"), modRevision: 11n } }] });
    await watcher.next();
    stream.fail(Status.UNAVAILABLE, "connection reset (scripted)", "sent-and-lost");
    await client.wire.nextStream();
    expect(broken).toHaveLength(1);
    expect(resumed).toHaveLength(1);
    expect([...resumed[0]!.resumeRevisions.values()]).toEqual([12n]);
    watcher.cancel();
  });

  it("publishes a lease etcd no longer has as lost, and tells the logger at error", async () => {
    const lost = listen(CHANNELS.leaseLost);
    const { logger, lines } = recordingLogger();
    client = new ScriptedClient({ endpoints: ["a:2379"], logger }, diagnosticsChannel);
    const keeping = client.lease.keepAlive(7n);
    const stream = await client.wire.nextStream();
    await stream.nextRequest();
    stream.respond({ ID: 7n, TTL: 30n, header: {} });
    const kept = await keeping;
    // etcd's answer for a lease it no longer has, as to the next renewal.
    stream.respond({ ID: 7n, TTL: 0n, header: {} });
    await kept.lost;
    expect(lost).toEqual([{ leaseId: 7n, reason: "gone" }]);
    expect(lines).toContain("error: lease lost");
  });

  it("publishes a refreshed token and a failed auto-sync", async () => {
    const tokens = listen(CHANNELS.tokenRefreshed);
    const syncs = listen(CHANNELS.autoSyncFailed) as { error: unknown }[];
    client = new ScriptedClient({ endpoints: ["127.0.0.1:2379"], username: "u", password: "p", autoSyncIntervalMs: 20 }, diagnosticsChannel);
    client.wire.on("/etcdserverpb.Auth/Authenticate", () => ({ token: "t1" }));
    client.wire.on(RANGE, () => ({}));
    client.wire.on("/etcdserverpb.Cluster/MemberList", () => {
      throw new WireFailure("/etcdserverpb.Cluster/MemberList", Status.PERMISSION_DENIED, "etcdserver: permission denied", "answered");
    });
    await client.kv.get("k");
    expect(tokens).toHaveLength(1);
    for (let i = 0; i < 100 && syncs.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(syncs[0]?.error).toBeInstanceOf(Error);
  });

  it("keeps going when the logger throws", async () => {
    const logger: Logger = {
      warn: () => {
        throw new Error("the logger is broken");
      },
    };
    client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"], retry: { maxRetries: 0 }, logger }, diagnosticsChannel);
    client.wire.on(RANGE, (call) => {
      if (call.endpoint === "a:2379") throw new WireFailure(RANGE, Status.UNAVAILABLE, "stopped (scripted)", "answered");
      return {};
    });
    await expect(client.kv.get("k")).rejects.toThrow(/stopped/);
    await tick();
    expect(await client.kv.get("k")).toBeDefined();
  });
});
