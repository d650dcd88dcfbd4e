import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import { CallCanceledError, ClientClosedError, EndpointError, ErrLeaseNotFound, LeaseLostError } from "../../../src/index.js";
import { callCounter, clientFor, overGateway, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

describe("lease keep-alive", () => {
  it("keeps short leases alive well past their TTL, over a few streams they share", async () => {
    const streams = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { outer: [streams.middleware] } });
    const p = uniquePrefix();
    const leases = await Promise.all(Array.from({ length: 10 }, () => client.lease.grant(2)));
    await client.kv.put(`${p}k`, "v", { lease: leases[0]!.id });
    const kept = await Promise.all(leases.map((l) => client.lease.keepAlive(l.id)));
    await sleep(5000);
    expect((await client.kv.get(`${p}k`)).count).toBe(1n);
    for (const k of kept) {
      expect(k.signal.aborted).toBe(false);
      expect(k.deadline).toBeGreaterThan(Date.now());
    }
    // Renewals are spread over a fixed few streams (16): ten leases, ten streams; never more.
    expect(streams.calls.LeaseKeepAlive).toBe(10);
    for (const k of kept) k.close();
    const closed = await kept[0]!.lost;
    expect(closed.reason).toBe("closed");
    // Without keep-alives the lease runs out.
    await sleep(3500);
    expect((await client.kv.get(`${p}k`)).count).toBe(0n);
  });

  it("reports a revoked lease as lost at its next renewal", async () => {
    const { client } = etcd;
    const lease = await client.lease.grant(3);
    const kept = await client.lease.keepAlive(lease.id);
    await client.lease.revoke(lease.id);
    const started = Date.now();
    const lost = await kept.lost;
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(lost.reason).toBe("gone");
    expect(lost.leaseId).toBe(lease.id);
    expect(kept.signal.aborted).toBe(true);
    expect(kept.signal.reason).toBe(lost);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("declares the lease lost no later than its deadline when etcd stops answering", async () => {
    await using cluster = await startCluster(1);
    await using client = clientFor(cluster);
    const lease = await client.lease.grant(3);
    const kept = await client.lease.keepAlive(lease.id);
    const fenced = await client.lease.keepAlive((await client.lease.grant(3)).id, { lossMarginMs: 1000 });
    const fencedLostAt = fenced.lost.then(() => Date.now());
    await sleep(1500);
    await cluster.members[0]!.pause();
    try {
      const deadline = kept.deadline;
      const fencedDeadline = fenced.deadline;
      const lost = await kept.lost;
      expect(lost.reason).toBe("deadline");
      // At the deadline, not a TTL after it (npm etcd3 waits two TTLs).
      expect(Date.now()).toBeGreaterThanOrEqual(deadline - 50);
      expect(Date.now()).toBeLessThan(deadline + 1500);
      // Asked for a margin, a second before.
      expect((await fenced.lost).reason).toBe("deadline");
      expect(await fencedLostAt).toBeGreaterThanOrEqual(fencedDeadline - 1000 - 50);
      expect(await fencedLostAt).toBeLessThan(fencedDeadline - 500);
    } finally {
      cluster.members[0]!.resume();
    }
  });

  it("keeps a lease of 30 days, and shares one keep-alive between concurrent starts", async () => {
    const { client } = etcd;
    const long = await client.lease.grant(30 * 24 * 3600);
    const kept = await client.lease.keepAlive(long.id);
    const short = await client.lease.grant(2);
    const [a, b] = await Promise.all([client.lease.keepAlive(short.id), client.lease.keepAlive(short.id)]);
    expect(a).toBe(b);
    await sleep(3000);
    expect(kept.signal.aborted).toBe(false);
    expect(a.signal.aborted).toBe(false);
    expect((await client.lease.timeToLive(short.id)).ttl).toBeGreaterThan(0n);
    kept.close();
    a.close();
    await client.lease.revoke(long.id);
  });

  it("renews once, and rejects unknown leases", async () => {
    const { client } = etcd;
    const lease = await client.lease.grant(30);
    expect(await client.lease.keepAliveOnce(lease.id)).toBe(30n);
    await expect(client.lease.keepAliveOnce(55555)).rejects.toBeInstanceOf(ErrLeaseNotFound);
    await expect(client.lease.keepAlive(55555)).rejects.toBeInstanceOf(ErrLeaseNotFound);
  });

  it("sends the first renewal at once, without asking the TTL first, and dates the deadline from it", async () => {
    const calls = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { outer: [calls.middleware] } });
    const lease = await client.lease.grant(20);
    const before = Date.now();
    const kept = await client.lease.keepAlive(lease.id);
    expect(calls.calls.LeaseTimeToLive).toBeUndefined();
    expect(kept.deadline).toBeGreaterThanOrEqual(before + 20_000);
    expect(kept.deadline).toBeLessThanOrEqual(Date.now() + 20_000);
    kept.close();
    await client.lease.revoke(lease.id);
  });

  it("fails a keepAlive still waiting for its first answer: typed, never hanging", async () => {
    await using cluster = await startCluster(1);
    await using client = clientFor(cluster, { dialTimeoutMs: 1000 });
    const leases = await Promise.all([1, 2, 3].map(() => client.lease.grant(60)));
    const member = cluster.members[0]!;
    await member.pause();
    // etcd silent: the caller's signal ends the wait, and client.close() does.
    const abort = new AbortController();
    const canceled = expect(client.lease.keepAlive(leases[0]!.id, { signal: abort.signal })).rejects.toBeInstanceOf(CallCanceledError);
    const closedMeanwhile = expect(client.lease.keepAlive(leases[1]!.id)).rejects.toBeInstanceOf(ClientClosedError);
    await sleep(300);
    abort.abort();
    await canceled;
    client.close();
    await closedMeanwhile;
    // etcd gone: an EndpointError once no member answers within the dial timeout.
    await using other = clientFor(cluster, { dialTimeoutMs: 1000 });
    const started = Date.now();
    const unreachable = expect(other.lease.keepAlive(leases[2]!.id)).rejects.toBeInstanceOf(EndpointError);
    await member.kill();
    await unreachable;
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it("keeps a lease (TTL 5 s, default settings) when its stream's member, the leader, freezes", async () => {
    await using cluster = await startCluster(3);
    const leader = await cluster.leader();
    // The leader first, so that the keep-alive stream goes to it.
    const endpoints = [leader.endpoint, ...cluster.endpoints.filter((e) => e !== leader.endpoint)];
    await using client = clientFor(cluster, { endpoints });
    const lease = await client.lease.grant(5);
    const kept = await client.lease.keepAlive(lease.id);
    await sleep(500);
    await leader.pause();
    try {
      // Two TTLs: the stream must have moved, and the renewals landed, for the lease to last.
      await sleep(10_000);
      expect(kept.signal.aborted, "the lease was reported lost").toBe(false);
      await using other = clientFor(cluster, { endpoints: endpoints.slice(1) });
      expect((await other.lease.timeToLive(lease.id)).ttl).toBeGreaterThan(0n);
    } finally {
      leader.resume();
    }
    kept.close();
  }, 40_000);

  it.runIf(overGateway())("renews many leases in few HTTP requests over the gateway, each answered", async () => {
    // Each POST to the keep-alive route, with the renewals in its body.
    const posts: number[] = [];
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      if (String(input).endsWith("/v3/lease/keepalive")) posts.push(String(init?.body).split("\n").length);
      return realFetch(input, init);
    });
    try {
      await using client = clientFor(etcd.cluster);
      const leases = await Promise.all(Array.from({ length: 400 }, () => client.lease.grant(3)));
      const kept = await Promise.all(leases.map((l) => client.lease.keepAlive(l.id)));
      // One lease revoked among those batched with it: it alone is lost.
      await client.lease.revoke(leases[7]!.id);
      expect((await kept[7]!.lost).reason).toBe("gone");
      await sleep(4000);
      for (const k of kept.filter((_, i) => i !== 7)) expect(k.deadline).toBeGreaterThan(Date.now());
      expect((await client.lease.timeToLive(leases[399]!.id)).ttl).toBeGreaterThan(0n);
      const renewals = posts.reduce((a, b) => a + b, 0);
      // 400 leases renewed every second for 4 s.
      expect(renewals).toBeGreaterThan(1200);
      expect(posts.length).toBeLessThan(renewals / 5);
      for (const k of kept) k.close();
    } finally {
      spy.mockRestore();
    }
  });

  it("survives failover and a leader kill without a false loss while quorum holds", async () => {
    await using cluster = await startCluster(3, ["--grpc-keepalive-min-time=500ms"]);
    await using client = clientFor(cluster, { keepAliveTimeMs: 1000, keepAliveTimeoutMs: 1000, dialTimeoutMs: 2000 });
    const p = uniquePrefix();
    const lease = await client.lease.grant(5);
    await client.kv.put(`${p}k`, "v", { lease: lease.id });
    const kept = await client.lease.keepAlive(lease.id);
    await sleep(1000);
    // The keep-alive stream's own member first (failover), then the leader (leader change).
    const pinned = cluster.members[0]!;
    await pinned.kill();
    await sleep(6000);
    expect(kept.signal.aborted).toBe(false);
    await pinned.restart();
    const leader = await cluster.leader();
    await leader.kill();
    await sleep(6000);
    expect(kept.signal.aborted).toBe(false);
    expect((await client.kv.get(`${p}k`, { deadline: 10_000 })).count).toBe(1n);
    expect((await client.lease.timeToLive(lease.id)).ttl).toBeGreaterThan(0n);
    kept.close();
  }, 90_000);
});
