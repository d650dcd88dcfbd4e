import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Client, ErrLearnerNotReady, ErrMemberNotLearner, ErrNoSpace, ErrPermissionDenied, ErrRoleNotFound, ErrUnhealthy, ErrUserNotFound, UnsupportedByTransportError } from "../../../src/index.js";
import { clientFor, configFor, etcdAtLeast, overGateway, startCluster, uniquePrefix } from "../../helpers.js";

/** Repeats `call` while it fails with `transient`, for up to 20 s. */
async function retryWhile<T>(transient: abstract new (...args: never[]) => Error, call: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof transient) || i >= 200) throw err;
      await sleep(100);
    }
  }
}

describe("cluster membership", () => {
  it("grows a cluster from 1 to 3 members through learners and shrinks it again", async () => {
    await using cluster = await startCluster(1);
    await using client = clientFor(cluster, { dialTimeoutMs: 2000 });
    const p = uniquePrefix();
    await client.kv.put(`${p}k`, "before growing");

    const grow = async () => {
      let learnerId = 0n;
      const member = await cluster.join(async (peerUrl) => {
        // etcd refuses a new member until its own has been connected to a quorum for 5 s.
        const added = await retryWhile(ErrUnhealthy, () => client.cluster.memberAddAsLearner([peerUrl]));
        expect(added.member.isLearner).toBe(true);
        expect(added.member.peerURLs).toEqual([peerUrl]);
        learnerId = added.member.id;
      });
      // A learner is promoted once it has caught up with the leader.
      await retryWhile(ErrLearnerNotReady, () => client.cluster.memberPromote(learnerId));
      // Before 3.7 etcd answered a repeated promote with ErrLearnerNotReady. 3.7 still does until
      // the new voter has acknowledged the leader's log up to the promotion itself (its readiness
      // check comes before the learner check), which may take a moment.
      if (etcdAtLeast("3.7")) await expect(retryWhile(ErrLearnerNotReady, () => client.cluster.memberPromote(learnerId))).rejects.toBeInstanceOf(ErrMemberNotLearner);
      return { member, id: learnerId };
    };
    const second = await grow();
    const third = await grow();

    const list = await client.cluster.memberList({ linearizable: true });
    expect(list.members).toHaveLength(3);
    expect(list.members.every((m) => !m.isLearner && m.name !== "")).toBe(true);
    await using everywhere = clientFor(cluster);
    for (const endpoint of cluster.endpoints) {
      expect((await everywhere.maintenance.status({ endpoint })).isLearner).toBe(false);
    }
    expect((await everywhere.kv.get(`${p}k`)).kvs[0]?.valueString).toBe("before growing");

    const updated = await client.cluster.memberUpdate(second.id, second.member.peerUrl ? [second.member.peerUrl] : []);
    expect(updated.members.find((m) => m.id === second.id)?.peerURLs).toEqual([second.member.peerUrl]);

    for (const { member, id } of [third, second]) {
      const after = await retryWhile(ErrUnhealthy, () => client.cluster.memberRemove(id));
      expect(after.members.some((m) => m.id === id)).toBe(false);
      await cluster.forget(member);
    }
    expect((await client.cluster.memberList()).members).toHaveLength(1);
    await client.kv.put(`${p}k`, "after shrinking");
  }, 90_000);
});

describe("maintenance", () => {
  it("reports status, hashes alike across members, defragments and moves the leader", async () => {
    await using cluster = await startCluster(3);
    await using client = clientFor(cluster);
    const p = uniquePrefix();
    for (let i = 0; i < 20; i++) await client.kv.put(`${p}${i}`, "v".repeat(1000));
    await client.kv.delete(p, { prefix: true });
    const revision = (await client.kv.get("x")).header.revision;
    const statuses = await Promise.all(cluster.endpoints.map((endpoint) => client.maintenance.status({ endpoint })));
    expect(new Set(statuses.map((s) => s.header.memberId)).size).toBe(3);
    expect(statuses.every((s) => s.version.startsWith("3.") && s.dbSize > 0n && s.leader === statuses[0]!.leader)).toBe(true);

    if (overGateway() && !etcdAtLeast("3.5")) {
      // etcd 3.4's gateway has no HashKV route.
      await expect(client.maintenance.hashKV(revision)).rejects.toBeInstanceOf(UnsupportedByTransportError);
    } else {
      const hashes = await Promise.all(cluster.endpoints.map((endpoint) => client.maintenance.hashKV(revision, { endpoint })));
      expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
    }
    expect((await client.maintenance.hash({ endpoint: cluster.endpoints[0]! })).hash).toBeTypeOf("number");

    await client.maintenance.defragment({ endpoint: cluster.endpoints[0]! });
    const after = await client.maintenance.status({ endpoint: cluster.endpoints[0]! });
    expect(after.dbSizeInUse).toBeLessThanOrEqual(after.dbSize);

    const leader = await cluster.leader();
    const leaderStatus = await client.maintenance.status({ endpoint: leader.endpoint });
    const target = statuses.find((s) => s.header.memberId !== leaderStatus.header.memberId)!.header.memberId;
    await client.maintenance.moveLeader(target, { endpoint: leader.endpoint });
    expect((await client.maintenance.status({ endpoint: leader.endpoint })).leader).toBe(target);
  }, 60_000);

  it("raises NOSPACE on a tiny quota and recovers after compaction, defragmentation and disarming", async () => {
    await using cluster = await startCluster(1, ["--quota-backend-bytes=1048576"]);
    await using client = clientFor(cluster);
    const p = uniquePrefix();
    const value = new Uint8Array(64 * 1024);
    let i = 0;
    const err = await (async () => {
      for (; i < 200; i++) await client.kv.put(`${p}${i % 4}`, value);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErrNoSpace);
    const alarms = await client.maintenance.alarmList();
    expect(alarms.map((a) => a.alarm)).toEqual(["nospace"]);
    const { header } = await client.kv.get("x");
    await client.kv.compact(header.revision, { physical: true });
    await client.maintenance.defragment({ endpoint: cluster.endpoints[0]! });
    await client.maintenance.alarmDisarm(alarms[0]!);
    expect(await client.maintenance.alarmList()).toEqual([]);
    await client.kv.put(`${p}after`, "space again");
  }, 60_000);

  // Downgrade came in 3.5, where enabling it on a single member timed out in our runs.
  it.skipIf(!etcdAtLeast("3.6"))("validates, enables and cancels a downgrade", async () => {
    await using cluster = await startCluster(1);
    await using client = clientFor(cluster);
    const status = await client.maintenance.status();
    const [major, minor] = status.version.split(".").map(Number);
    const target = `${major}.${minor! - 1}`;
    expect((await client.maintenance.downgrade("validate", target)).version).toMatch(/^3\./);
    await client.maintenance.downgrade("enable", target);
    await client.maintenance.downgrade("cancel");
  });
});

describe("auth administration", () => {
  it("manages users, roles and permissions, and etcd enforces them", async () => {
    await using cluster = await startCluster(1);
    await using admin = clientFor(cluster);
    const { auth } = admin;
    const authStatus = etcdAtLeast("3.5"); // AuthStatus came in 3.5
    if (authStatus) expect((await auth.authStatus()).enabled).toBe(false);
    await auth.roleAdd("root");
    await auth.userAdd("root", "root-pw");
    await auth.userGrantRole("root", "root");
    await auth.roleAdd("reader");
    await auth.roleAdd("writer");
    await auth.roleGrantPermission("reader", "data/", "read", { prefix: true });
    await auth.roleGrantPermission("writer", "data/a", "write");
    await auth.roleGrantPermission("writer", "data/m", "readwrite", { end: "data/n" });
    await auth.userAdd("ann", "ann-pw");
    await auth.userAdd("bob", "bob-pw");
    await auth.userAdd("cert-only", "", { noPassword: true });
    await auth.userGrantRole("ann", "reader");
    await auth.userGrantRole("ann", "writer");
    await auth.userGrantRole("bob", "reader");
    expect((await auth.userGet("ann")).roles.sort()).toEqual(["reader", "writer"]);
    expect((await auth.userList()).users.sort()).toEqual(["ann", "bob", "cert-only", "root"]);
    expect((await auth.roleList()).roles.sort()).toEqual(["reader", "root", "writer"]);
    const writer = await auth.roleGet("writer");
    expect(writer.permissions.map((p) => `${p.type} ${p.keyString}`).sort()).toEqual(["readwrite data/m", "write data/a"]);

    await auth.authEnable();
    await using root = clientFor(cluster, { username: "root", password: "root-pw" });
    if (authStatus) expect((await root.auth.authStatus()).enabled).toBe(true);
    await using ann = await Client.connect(configFor(cluster, { username: "ann", password: "ann-pw" }));
    await using bob = await Client.connect(configFor(cluster, { username: "bob", password: "bob-pw" }));
    await ann.kv.put("data/a", "1");
    await ann.kv.put("data/m1", "2");
    await expect(ann.kv.put("data/b", "x")).rejects.toBeInstanceOf(ErrPermissionDenied);
    expect((await ann.kv.get("data/", { prefix: true })).count).toBe(2n);
    expect((await bob.kv.get("data/a")).kvs[0]?.valueString).toBe("1");
    await expect(bob.kv.put("data/a", "2")).rejects.toBeInstanceOf(ErrPermissionDenied);

    await root.auth.roleRevokePermission("writer", "data/a");
    await root.auth.userRevokeRole("bob", "reader");
    await expect(ann.kv.put("data/a", "again")).rejects.toBeInstanceOf(ErrPermissionDenied);
    await expect(bob.kv.get("data/a")).rejects.toBeInstanceOf(ErrPermissionDenied);
    await root.auth.userChangePassword("bob", "new-pw");
    await using bobAgain = await Client.connect(configFor(cluster, { username: "bob", password: "new-pw" }));
    await root.auth.userDelete("cert-only");
    await expect(root.auth.userGet("cert-only")).rejects.toBeInstanceOf(ErrUserNotFound);
    await root.auth.roleDelete("writer");
    await expect(root.auth.roleGet("writer")).rejects.toBeInstanceOf(ErrRoleNotFound);
    await root.auth.authDisable();
    if (authStatus) expect((await admin.auth.authStatus()).enabled).toBe(false);
    expect(bobAgain).toBeDefined();
  }, 60_000);
});
