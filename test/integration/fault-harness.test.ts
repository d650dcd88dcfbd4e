import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Client, DeadlineExceededError, ErrNoLeader } from "../../src/index.js";
import { peerNetworkUnavailable } from "../harness/peer-network.js";
import { etcdAtLeast, startCluster, uniquePrefix } from "../helpers.js";

const noPeerNetwork = await peerNetworkUnavailable();

/** A put over etcd's JSON gateway at `url`, as a browser client would send it. */
async function gatewayPut(url: string, key: string, value: string, timeoutMs = 2000): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const res = await fetch(`${url}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: b64(key), value: b64(value) }), signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`gateway put: ${res.status}`);
}

describe("fault proxies in front of the members", () => {
  it("carry gRPC and the HTTP gateway on the same port, and hold or reset them on demand", async () => {
    await using cluster = await startCluster(1, [], undefined, undefined, { faultProxies: true });
    const member = cluster.members[0]!;
    expect(cluster.endpoints).toEqual([cluster.faults(0).endpoint]);
    expect(member.directEndpoint).not.toBe(member.endpoint);
    await using client = new Client({ endpoints: cluster.endpoints });
    const p = uniquePrefix();
    await client.kv.put(`${p}a`, "over grpc");
    await gatewayPut(member.clientUrl, `${p}b`, "over the gateway");
    expect((await client.kv.get(p, { prefix: true })).kvs.map((kv) => kv.valueString)).toEqual(["over grpc", "over the gateway"]);

    cluster.faults(0).blackhole();
    await expect(client.kv.get(`${p}a`, { deadline: 500 })).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(gatewayPut(member.clientUrl, `${p}c`, "held", 500)).rejects.toThrow();
    // The harness's own calls go past the proxy.
    expect((await member.status()).leader).not.toBe("0");
    cluster.faults(0).pass();
    expect((await client.kv.get(`${p}a`, { deadline: 5000 })).kvs[0]?.valueString).toBe("over grpc");
    // A reset connection is opened again (a read is retried on it).
    const before = cluster.faults(0).acceptedConnections;
    cluster.faults(0).reset();
    expect((await client.kv.get(`${p}b`, { deadline: 5000 })).kvs[0]?.valueString).toBe("over the gateway");
    expect(cluster.faults(0).acceptedConnections).toBeGreaterThan(before);

    // The member advertises the proxy, so a client that syncs its endpoints keeps going through it.
    const { members } = await client.cluster.memberList();
    expect(members[0]?.clientURLs).toEqual([member.clientUrl]);
  });
});

// Clients reach a member in a namespace over a unix socket, which etcd 3.4 cannot listen on by path.
describe.skipIf(noPeerNetwork !== undefined || !etcdAtLeast("3.5"))("members in network namespaces", () => {
  it("partition a member from its peers while its clients still reach it, and tear everything down", async () => {
    const cluster = await startCluster(3, [], undefined, undefined, { peerNamespaces: true });
    const namespaces = () => execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").filter((l) => l.startsWith(`etcd-sdk-${process.pid}-`));
    try {
      expect(namespaces()).toHaveLength(3);
      await using isolated = new Client({ endpoints: [cluster.members[0]!.endpoint] });
      await using rest = new Client({ endpoints: cluster.endpoints.slice(1) });
      const p = uniquePrefix();
      await isolated.kv.put(`${p}k`, "before");

      await cluster.partitionFromPeers(0);
      // The member is reachable but has no leader; the other two go on.
      await expect
        .poll(() => isolated.kv.get(`${p}k`, { serializable: true, requireLeader: true }).then(() => "answered", (err: unknown) => err), { timeout: 15_000, interval: 200 })
        .toBeInstanceOf(ErrNoLeader);
      expect((await isolated.kv.get(`${p}k`, { serializable: true })).kvs[0]?.valueString).toBe("before");
      await rest.kv.put(`${p}k`, "during");

      await cluster.reconnectPeers(0);
      await expect.poll(() => isolated.kv.get(`${p}k`, { deadline: 2000 }).then((r) => r.kvs[0]?.valueString, () => undefined), { timeout: 15_000, interval: 200 }).toBe("during");
    } finally {
      await cluster.close();
    }
    expect(namespaces()).toEqual([]);
  });
});
