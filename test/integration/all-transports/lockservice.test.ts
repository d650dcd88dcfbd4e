import { describe, expect, it } from "vitest";
import { NotLeaderError } from "../../../src/index.js";
import { uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

describe("server-side lock and election services", () => {
  it("locks and unlocks through v3lock, serving the second locker after the first", async () => {
    const { client } = etcd;
    const name = `${uniquePrefix()}lock`;
    const [a, b] = await Promise.all([client.lease.grant(30), client.lease.grant(30)]);
    const first = await client.lockService.lock(name, a.id);
    expect(Buffer.from(first.key).toString().startsWith(name)).toBe(true);
    let secondHeld = false;
    const second = client.lockService.lock(name, b.id).then((r) => {
      secondHeld = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(secondHeld).toBe(false);
    await client.lockService.unlock(first.key);
    const held = await second;
    expect(held.header.revision).toBeGreaterThan(first.header.revision);
    await client.lockService.unlock(held.key);
  });

  it("campaigns, proclaims, observes and resigns through v3election", async () => {
    const { client } = etcd;
    const name = `${uniquePrefix()}election`;
    expect(await client.electionService.leader(name)).toBeUndefined();
    const lease = await client.lease.grant(30);
    const leader = await client.electionService.campaign(name, lease.id, "v1");
    expect(leader.lease).toBe(lease.id);
    // Observe starts with the current leader; proclaim only once that has been seen.
    const observed = client.electionService.observe(name)[Symbol.asyncIterator]();
    const seen = [(await observed.next()).value?.valueString];
    await client.electionService.proclaim(leader, "v2");
    seen.push((await observed.next()).value?.valueString);
    await observed.return(undefined);
    expect(seen).toEqual(["v1", "v2"]);
    expect((await client.electionService.leader(name))?.valueString).toBe("v2");
    await client.electionService.resign(leader);
    expect(await client.electionService.leader(name)).toBeUndefined();
    await expect(client.electionService.proclaim(leader, "v3")).rejects.toBeInstanceOf(NotLeaderError);
    await client.lease.revoke(lease.id);
  });
});
