import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { compare, ErrPermissionDenied, op, type Watcher } from "../../../src/index.js";
import { clientFor, enableAuth, overGateway, startCluster, uniquePrefix } from "../../helpers.js";
import type { EtcdCluster } from "../../harness/cluster.js";

const FAST_KEEPALIVE_SERVER = ["--grpc-keepalive-min-time=500ms"];
const fastClient = (cluster: EtcdCluster, endpoints: string[]) => clientFor(cluster, { endpoints, keepAliveTimeMs: 1000, keepAliveTimeoutMs: 1000, dialTimeoutMs: 2000 });

/** Reads a watcher until `count` events arrived, checking revision by revision as they come. */
async function collect(watcher: Watcher, count: number, timeoutMs: number): Promise<{ values: string[]; revisions: bigint[] }> {
  const values: string[] = [];
  const revisions: bigint[] = [];
  const timer = setTimeout(() => watcher.cancel(), timeoutMs);
  try {
    for await (const response of watcher) {
      for (const event of response.events) {
        values.push(event.kv.valueString);
        revisions.push(event.kv.modRevision);
      }
      if (values.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return { values, revisions };
}

describe("watch resume", () => {
  it("loses and repeats nothing while thousands of events flow through a member kill and a leader change", async () => {
    await using cluster = await startCluster(3, FAST_KEEPALIVE_SERVER);
    await using watching = fastClient(cluster, cluster.endpoints);
    await using writing = fastClient(cluster, [...cluster.endpoints].reverse());
    const p = uniquePrefix();
    const total = 2000;
    const watcher = watching.watch(p, { prefix: true });
    // A second watcher read by an observer instead of a loop must see exactly the same.
    const observed = watching.watch(p, { prefix: true });
    const seenByObserver: string[] = [];
    let observerError: unknown;
    observed.subscribe({
      next: ({ events }) => seenByObserver.push(...events.map((e) => e.kv.valueString)),
      error: (err) => (observerError = err),
    });
    await Promise.all([watcher.ready, observed.ready]);
    const collected = collect(watcher, total, 120_000);

    // Each value is written once: a compare on the key's last revision makes a retried write
    // after an unknown outcome fail instead of landing twice.
    let written = 0;
    let lastRevision = 0n;
    const writer = (async () => {
      while (written < total) {
        try {
          const res = await writing
            .txn()
            .if(compare.modRevision(`${p}k`, "=", lastRevision))
            .then(op.put(`${p}k`, String(written)))
            .commit({ deadline: 5000 });
          if (res.succeeded) {
            lastRevision = res.header.revision;
            written++;
            continue;
          }
        } catch {
          // outcome unknown: look below
        }
        const kv = (await writing.kv.get(`${p}k`, { deadline: 5000 }).catch(() => undefined))?.kvs[0];
        if (kv && kv.valueString === String(written)) {
          lastRevision = kv.modRevision;
          written++;
        }
      }
    })();

    // The watch stream sits on the first member (the watching client's pinned endpoint).
    while (written < total / 4) await sleep(20);
    await cluster.members[0]!.kill();
    while (written < total / 2) await sleep(20);
    await cluster.members[0]!.restart();
    const leader = await cluster.leader();
    await leader.kill();
    while (written < (3 * total) / 4) await sleep(20);
    await leader.restart();
    await writer;

    const { values, revisions } = await collected;
    expect(values).toEqual(Array.from({ length: total }, (_, i) => String(i)));
    for (let i = 1; i < revisions.length; i++) expect(revisions[i]! > revisions[i - 1]!, `revision ${i}`).toBe(true);
    for (const until = Date.now() + 30_000; seenByObserver.length < total && Date.now() < until; ) await sleep(20);
    expect(observerError).toBeUndefined();
    expect(seenByObserver).toEqual(values);
    observed.cancel();
  }, 180_000);

  // Over the gateway a stream cannot carry a progress request: there the connection decides.
  it.skipIf(overGateway())("moves the watchers off a frozen member within seconds, with default settings", async () => {
    await using cluster = await startCluster(3);
    const p = uniquePrefix();
    // A follower freezes, so that the writes meanwhile need no new leader.
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader)!;
    const others = cluster.endpoints.filter((e) => e !== follower.endpoint);
    await using client = clientFor(cluster, { endpoints: [follower.endpoint, ...others] });
    await using writer = clientFor(cluster, { endpoints: others });
    const watcher = client.watch(`${p}k`);
    await watcher.ready;
    await follower.pause();
    try {
      const frozen = Date.now();
      await writer.kv.put(`${p}k`, "after the freeze");
      const { value } = await watcher.next();
      expect(value?.events[0]?.kv.valueString).toBe("after the freeze");
      // Silent 5 s, probe unanswered 2 s, then the move: well before the ping's 15 s.
      expect(Date.now() - frozen).toBeLessThan(10_000);
    } finally {
      follower.resume();
    }
  }, 30_000);

  it("resumes a watcher without start revision from its creation, not from the reconnect", async () => {
    await using cluster = await startCluster(3, FAST_KEEPALIVE_SERVER);
    // The watch stream goes to a follower (the first endpoint), which is then frozen: the write
    // goes through the others while the watcher cannot hear, and it reconnects afterwards.
    const leader = await cluster.leader();
    const [follower, other] = cluster.members.filter((m) => m !== leader);
    await using watching = fastClient(cluster, [follower!.endpoint, leader.endpoint, other!.endpoint]);
    await using writing = fastClient(cluster, [leader.endpoint]);
    const p = uniquePrefix();
    const watcher = watching.watch(`${p}k`);
    await watcher.ready;
    await follower!.pause();
    try {
      await writing.kv.put(`${p}k`, "written while the stream was down");
      const { values } = await collect(watcher, 1, 20_000);
      expect(values).toEqual(["written while the stream was down"]);
    } finally {
      follower!.resume();
    }
  }, 60_000);

  it("passes a server cancel with its reason to the watcher", async () => {
    await using cluster = await startCluster(1);
    await enableAuth(cluster, "root-pw", "alice-pw");
    await using alice = clientFor(cluster, { username: "alice", password: "alice-pw" });
    const refused = alice.watch("secret/");
    await expect(refused.ready).rejects.toBeInstanceOf(ErrPermissionDenied);
    const err = await collect(refused, 1, 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErrPermissionDenied);
    // Alice may watch what she may read.
    const allowed = alice.watch("pub/", { prefix: true });
    await allowed.ready;
    allowed.cancel();
  });
});
