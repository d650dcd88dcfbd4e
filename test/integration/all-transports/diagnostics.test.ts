import diagnosticsChannel from "node:diagnostics_channel";
import { describe, expect, it } from "vitest";
import { CHANNELS, type CallContext } from "../../../src/core/diagnostics.js";
import { clientFor, startCluster, uniquePrefix } from "../../helpers.js";

/** Every message published on `name` while `run` runs. */
async function heard<T>(names: string[], run: (seen: Map<string, unknown[]>) => Promise<T>): Promise<T> {
  const seen = new Map<string, unknown[]>(names.map((name) => [name, []]));
  const handlers = names.map((name) => [name, (message: unknown) => seen.get(name)!.push(message)] as const);
  for (const [name, handler] of handlers) diagnosticsChannel.subscribe(name, handler);
  try {
    return await run(seen);
  } finally {
    for (const [name, handler] of handlers) diagnosticsChannel.unsubscribe(name, handler);
  }
}

describe("diagnostics against etcd", () => {
  it("tells why a watcher went quiet and when it resumed, which endpoint calls went to, and a lease lost", async () => {
    await using cluster = await startCluster(3);
    const logged: string[] = [];
    const logger = { info: (message: string) => logged.push(`info: ${message}`), warn: (message: string) => logged.push(`warn: ${message}`), error: (message: string) => logged.push(`error: ${message}`) };
    // Not the leader: a put right after the kill would otherwise wait for an election and may time out.
    const leader = await cluster.leader();
    const first = cluster.members.find((m) => m !== leader);
    const endpoints = [first!.endpoint, ...cluster.endpoints.filter((e) => e !== first!.endpoint)];
    const calls: CallContext[] = [];
    const tracing = diagnosticsChannel.tracingChannel(CHANNELS.call);
    const ignore = () => undefined;
    const onStart = { start: (context: object) => void calls.push(context as CallContext), end: ignore, asyncStart: ignore, asyncEnd: ignore, error: ignore };
    tracing.subscribe(onStart);
    try {
      await heard([CHANNELS.watchBroken, CHANNELS.watchResumed, CHANNELS.leaseLost], async (seen) => {
        await using client = clientFor(cluster, { endpoints, logger, dialTimeoutMs: 3000 });
        const p = uniquePrefix();
        await client.kv.put(`${p}k`, "1");
        expect(calls.some((c) => c.method === "/etcdserverpb.KV/Put" && c.endpoint === first!.endpoint)).toBe(true);

        const watcher = client.watch(`${p}k`);
        await watcher.ready;
        await first!.kill();
        // A member's kill can still cost the cluster a moment (etcd's ErrTimeout); the value is the same if written twice.
        await expect.poll(() => client.kv.put(`${p}k`, "2", { deadline: 5_000 }).then(() => true, () => false), { timeout: 15_000, interval: 100 }).toBe(true);
        const next = await watcher.next();
        expect(next.value?.events[0]?.kv.valueString).toBe("2");
        expect(seen.get(CHANNELS.watchBroken)!.length).toBeGreaterThanOrEqual(1);
        expect(seen.get(CHANNELS.watchResumed)!.length).toBeGreaterThanOrEqual(1);
        expect(logged).toContain("warn: watch stream broke");
        expect(logged).toContain("info: watch stream resumed");
        watcher.cancel();

        const lease = await client.lease.grant(3);
        const kept = await client.lease.keepAlive(lease.id);
        await client.lease.revoke(lease.id);
        const lost = await kept.lost;
        expect(lost.reason).toBe("gone");
        expect(seen.get(CHANNELS.leaseLost)).toEqual([{ leaseId: lease.id, reason: "gone" }]);
        expect(logged).toContain("error: lease lost");
      });
    } finally {
      tracing.unsubscribe(onStart);
    }
  }, 30_000);
});
