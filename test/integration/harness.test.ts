import { describe, expect, it } from "vitest";
import { startCluster, clientFor, uniquePrefix } from "../helpers.js";

/** True when /health on the member answers within the timeout. */
async function answers(url: string, timeoutMs = 500): Promise<boolean> {
  try {
    await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

describe("3-member test cluster", () => {
  it("kills, pauses, resumes and restarts members while the cluster keeps quorum", async () => {
    await using cluster = await startCluster(3);
    const client = clientFor(cluster);
    try {
      expect(cluster.members).toHaveLength(3);
      const statuses = await Promise.all(cluster.members.map((m) => m.status()));
      expect(new Set(statuses.map((s) => s.memberId)).size).toBe(3);
      expect(new Set(statuses.map((s) => s.leader)).size).toBe(1);

      const p = uniquePrefix();
      await client.kv.put(`${p}k`, "before");

      // Kill the leader: the other two elect a new one.
      const leader = await cluster.leader();
      await leader.kill();
      expect(leader.running).toBe(false);
      const next = await cluster.leader();
      expect(next).not.toBe(leader);

      // Pause a follower: it stops answering but its process lives on.
      const follower = cluster.members.find((m) => m !== leader && m !== next)!;
      await follower.pause();
      expect(follower.running).toBe(true);
      expect(await answers(follower.clientUrl)).toBe(false);
      follower.resume();
      await follower.waitHealthy();

      // Restart the killed member on its data: it rejoins and sees the write.
      await leader.restart();
      const res = await fetch(`${leader.clientUrl}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: Buffer.from(`${p}k`).toString("base64") }),
      });
      const body = (await res.json()) as { kvs?: { value: string }[] };
      expect(Buffer.from(body.kvs?.[0]?.value ?? "", "base64").toString()).toBe("before");
    } finally {
      client.close();
    }
  });

  it("tears down every process and data dir, also a paused member", async () => {
    const cluster = await startCluster(1);
    const member = cluster.members[0]!;
    await member.pause();
    await cluster.close();
    expect(member.running).toBe(false);
    expect(await answers(member.clientUrl)).toBe(false);
    await cluster.close();
  });
});
