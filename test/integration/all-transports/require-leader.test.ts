import { describe, expect, it } from "vitest";
import { ErrNoLeader, UnsupportedByTransportError } from "../../../src/index.js";
import { clientFor, overGateway, startCluster, uniquePrefix } from "../../helpers.js";

describe("requireLeader on a unary call", () => {
  it("is refused by a member that lost its leader, which still answers a plain serializable read", async () => {
    await using cluster = await startCluster(3);
    const key = `${uniquePrefix()}k`;
    const [survivor, ...others] = cluster.members;
    await using writer = clientFor(cluster);
    await writer.kv.put(key, "v");
    // The survivor has the key; then it is left alone, a member without a leader.
    await using client = clientFor(cluster, { endpoints: [survivor!.clientUrl], retry: { maxRetries: 0 } });
    await expect.poll(async () => (await client.kv.get(key, { serializable: true })).count, { timeout: 10_000 }).toBe(1n);
    for (const member of others) await member.kill();
    if (overGateway()) {
      await expect(client.kv.get(key, { serializable: true, requireLeader: true })).rejects.toBeInstanceOf(UnsupportedByTransportError);
      return;
    }
    // Once its election timeout has passed, it knows it has no leader.
    await expect.poll(() => client.kv.get(key, { serializable: true, requireLeader: true }).then(() => "answered", (err: unknown) => err), { timeout: 10_000, interval: 200 }).toBeInstanceOf(ErrNoLeader);
    expect((await client.kv.get(key, { serializable: true })).kvs[0]?.valueString).toBe("v");
  });
});
