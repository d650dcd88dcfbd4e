import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, inject, it } from "vitest";
import { Client, InvalidArgumentError, OldClusterError } from "../../../src/index.js";
import { clientFor, configFor, startCluster, uniquePrefix } from "../../helpers.js";

describe("endpoint list", () => {
  it("learns the other members from the member list and uses them when the only known one dies", async () => {
    await using cluster = await startCluster(3);
    const [first] = cluster.members;
    await using client = clientFor(cluster, { endpoints: [first!.endpoint], autoSyncIntervalMs: 200, dialTimeoutMs: 2000 });
    expect(client.endpoints).toEqual([first!.endpoint]);
    expect((await client.sync()).sort()).toEqual([...cluster.endpoints].sort());

    await using synced = clientFor(cluster, { endpoints: [first!.endpoint], autoSyncIntervalMs: 200, dialTimeoutMs: 2000 });
    for (let i = 0; i < 50 && synced.endpoints.length < 3; i++) await sleep(100);
    expect(synced.endpoints.sort()).toEqual([...cluster.endpoints].sort());

    const p = uniquePrefix();
    await synced.kv.put(`${p}k`, "v");
    await first!.kill();
    expect((await synced.kv.get(`${p}k`, { deadline: 10_000 })).kvs[0]?.valueString).toBe("v");
  });
});

describe("setEndpoints", () => {
  it("moves calls to the endpoints it is given, and refuses a list the client could not use", async () => {
    await using cluster = await startCluster(3);
    const [first, second] = cluster.members;
    await using client = clientFor(cluster, { endpoints: [first!.endpoint], dialTimeoutMs: 2000 });
    const p = uniquePrefix();
    await client.kv.put(`${p}k`, "v");
    client.setEndpoints([`http://${second!.endpoint}`]);
    expect(client.endpoints).toEqual([second!.endpoint]);
    await first!.kill();
    expect((await client.kv.get(`${p}k`, { deadline: 10_000 })).kvs[0]?.valueString).toBe("v");
    expect(() => client.setEndpoints([])).toThrow(InvalidArgumentError);
    expect(() => client.setEndpoints(["ftp://x:1"])).toThrow(/must use http:\/\/, https:\/\/, unix:\/\/ or unixs:\/\//);
    expect(() => client.setEndpoints([`https://${second!.endpoint}`])).toThrow(/must not use TLS/);
    expect(client.endpoints).toEqual([second!.endpoint]);
  });
});

describe("rejectOldCluster", () => {
  it("accepts members at or above the minimum and rejects older ones by name", async () => {
    await using cluster = await startCluster(1);
    await using accepted = await Client.connect(configFor(cluster, { rejectOldCluster: true }));
    const running = inject("etcdVersion").split(".").slice(0, 2).join(".");
    await using exact = await Client.connect(configFor(cluster, { minClusterVersion: running }));
    expect((await exact.kv.get("k")).count).toBe(0n);

    const err = await Client.connect(configFor(cluster, { minClusterVersion: "3.99" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OldClusterError);
    expect((err as OldClusterError).endpoint).toBe(cluster.endpoints[0]);
    expect((err as Error).message).toMatch(/runs 3\.\d+\.\d+, older than the minimum 3\.99/);
    expect(() => clientFor(cluster, { minClusterVersion: "three" })).toThrow(InvalidArgumentError);
    expect(accepted.endpoints).toEqual(cluster.endpoints);
  });
});
