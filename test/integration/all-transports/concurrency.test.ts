import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { CallCanceledError, type Client, Election, type Isolation, LockedError, Mutex, NoLeaderError, NotLeaderError, runStm, Session } from "../../../src/index.js";
import { clientFor, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

describe("Mutex", () => {
  it("lets N contenders over M rounds increment a counter without losing an update", async () => {
    const p = uniquePrefix();
    const contenders = 5;
    const rounds = 10;
    await etcd.client.kv.put(`${p}counter`, "0");
    await Promise.all(
      Array.from({ length: contenders }, async () => {
        await using client = clientFor(etcd.cluster);
        await using session = await Session.create(client, { ttl: 10 });
        const mutex = new Mutex(session, `${p}lock`);
        for (let i = 0; i < rounds; i++) {
          await mutex.lock();
          // Read, then write after a pause: any overlap of two holders would lose an increment.
          const value = Number((await client.kv.get(`${p}counter`)).kvs[0]!.valueString);
          await sleep(2);
          await client.kv.put(`${p}counter`, String(value + 1));
          await mutex.unlock();
        }
      }),
    );
    expect((await etcd.client.kv.get(`${p}counter`)).kvs[0]?.valueString).toBe(String(contenders * rounds));
  }, 60_000);

  it("serves waiters in order of arrival, refuses tryLock while held, and frees the lock with the session", async () => {
    const p = uniquePrefix();
    const sessions = await Promise.all([0, 1, 2].map(() => Session.create(etcd.client, { ttl: 10 })));
    const [a, b, c] = sessions.map((s) => new Mutex(s, `${p}lock`));
    await a!.lock();
    await expect(new Mutex(sessions[1]!, `${p}lock`).tryLock()).rejects.toBeInstanceOf(LockedError);
    const order: string[] = [];
    const waitForKeys = async (n: number) => {
      while ((await etcd.client.kv.get(`${p}lock/`, { prefix: true, countOnly: true })).count < BigInt(n)) await sleep(10);
    };
    const bDone = b!.lock().then(() => order.push("b"));
    await waitForKeys(2);
    const cDone = c!.lock().then(() => order.push("c"));
    await waitForKeys(3);
    // Ending a's session (not unlock) releases the lock too.
    await sessions[0]!.close();
    await bDone;
    await b!.unlock();
    await cDone;
    expect(order).toEqual(["b", "c"]);
    await c!.unlock();
    for (const s of sessions) await s.close();
  });
});

describe("Election", () => {
  it("hands leadership over when the leader's session dies, and observers see each leader", async () => {
    const p = uniquePrefix();
    const sessions = await Promise.all([0, 1].map(() => Session.create(etcd.client, { ttl: 10 })));
    const [first, second] = sessions.map((s) => new Election(s, `${p}election`));
    const observer = new Election(sessions[0]!, `${p}election`);
    await expect(observer.leader()).rejects.toBeInstanceOf(NoLeaderError);

    const seen: string[] = [];
    const controller = new AbortController();
    const observing = (async () => {
      for await (const kv of observer.observe({ signal: controller.signal })) {
        seen.push(kv.valueString);
        if (seen.length === 3) break;
      }
    })();
    await first!.campaign("first");
    expect((await observer.leader()).valueString).toBe("first");
    const secondWins = second!.campaign("second");
    await first!.proclaim("first, again");
    await sessions[0]!.close();
    await secondWins;
    expect((await second!.leader()).valueString).toBe("second");
    await expect(first!.proclaim("too late")).rejects.toBeInstanceOf(NotLeaderError);
    await observing;
    expect(seen).toEqual(["first", "first, again", "second"]);
    await second!.resign();
    await expect(second!.leader()).rejects.toBeInstanceOf(NoLeaderError);
    await sessions[1]!.close();
  });

  it("fails a campaign whose candidacy vanished while it waited, rather than lead beside the next candidate", async () => {
    const p = uniquePrefix();
    // TTL 60 s: the waiting session's next renewal, which would notice its lease gone, is 20 s away.
    await using leading = await Session.create(etcd.client, { ttl: 60 });
    await using waiting = await Session.create(etcd.client, { ttl: 60 });
    const leader = new Election(leading, `${p}election`);
    await leader.campaign("first");
    const campaign = new Election(waiting, `${p}election`).campaign("second").catch((e: unknown) => e);
    while ((await etcd.client.kv.get(`${p}election`, { prefix: true, countOnly: true })).count < 2n) await sleep(10);
    await etcd.client.lease.revoke(waiting.lease);
    await leader.resign();
    expect(await campaign).toBeInstanceOf(NotLeaderError);
  });

  it("settles an aborted campaign and an aborted lock within a second of their signal when their member freezes", async () => {
    await using cluster = await startCluster(3);
    const p = uniquePrefix();
    // The holders talk to the last member, the waiters to the first, which then freezes.
    await using holders = clientFor(cluster, { endpoints: [cluster.endpoints[2]!] });
    await using waiters = clientFor(cluster, { endpoints: [cluster.endpoints[0]!] });
    const held = await Session.create(holders, { ttl: 10 });
    const waiting = await Session.create(waiters, { ttl: 10 });
    await new Election(held, `${p}election`).campaign("leader");
    await new Mutex(held, `${p}lock`).lock();

    const controller = new AbortController();
    const campaign = new Election(waiting, `${p}election`).campaign("waiting", { signal: controller.signal }).catch((e: unknown) => e);
    const lock = new Mutex(waiting, `${p}lock`).lock({ signal: controller.signal }).catch((e: unknown) => e);
    await sleep(500);
    await cluster.members[0]!.pause();
    try {
      controller.abort();
      const aborted = Date.now();
      const settled = await Promise.all([campaign, lock].map((p) => p.then((outcome) => ({ outcome, afterMs: Date.now() - aborted }))));
      for (const { outcome, afterMs } of settled) {
        expect(outcome).toBeInstanceOf(CallCanceledError);
        expect(afterMs).toBeLessThan(1000);
      }
      // Closing the session does not wait on the frozen member either.
      const closing = Date.now();
      await waiting.close({ deadline: 500 });
      expect(Date.now() - closing).toBeLessThan(1000);
    } finally {
      cluster.members[0]!.resume();
    }
    await held.close();
  }, 30_000);

  it("never has two leaders at once under repeated session loss and member kills", async () => {
    // Each candidate talks only to its own member; freezing that member makes its session expire.
    await using cluster = await startCluster(3, ["--grpc-keepalive-min-time=500ms"]);
    await using witness = clientFor(cluster);
    const p = uniquePrefix();
    let current: { candidate: number; lease: bigint; since: number } | undefined;
    // What each overlap looked like, so that a failure says whose belief outlived which lease.
    const overlaps: Promise<string>[] = [];
    let terms = 0;
    let stop = false;
    const t0 = Date.now();
    const candidate = async (i: number) => {
      await using client = clientFor(cluster, { endpoints: [cluster.members[i]!.endpoint], keepAliveTimeMs: 1000, keepAliveTimeoutMs: 1000, dialTimeoutMs: 1000 });
      while (!stop) {
        try {
          await using session = await Session.create(client, { ttl: 2 });
          const election = new Election(session, `${p}election`);
          await election.campaign(`candidate ${i}`, { signal: AbortSignal.any([session.signal, AbortSignal.timeout(15_000)]) });
          if (current !== undefined) overlaps.push(describeOverlap(witness, current, { candidate: i, lease: session.lease, since: Date.now() }, t0));
          current = { candidate: i, lease: session.lease, since: Date.now() };
          terms++;
          // Lead until the session is lost or for a while, then step down.
          const stepDown = sleep(300 + Math.random() * 700);
          await Promise.race([stepDown, session.done]);
          if (current?.candidate === i) current = undefined;
          if (!session.signal.aborted) await election.resign().catch(() => undefined);
        } catch {
          if (current?.candidate === i) current = undefined;
          await sleep(100);
        }
      }
    };
    const candidates = [0, 1, 2].map(candidate);
    // Leadership ends the moment a session is lost, before etcd expires the lease.
    const chaos = async () => {
      for (let round = 0; round < 4; round++) {
        const member = cluster.members[round % 3]!;
        await member.pause();
        await sleep(3500);
        member.resume();
        await sleep(1000);
      }
      const victim = cluster.members[1]!;
      await victim.kill();
      await sleep(2000);
      await victim.restart();
      await sleep(2000);
    };
    await chaos();
    stop = true;
    await Promise.all(candidates);
    console.info(`election chaos: ${terms} terms of leadership, ${overlaps.length} overlaps`);
    expect(await Promise.all(overlaps)).toEqual([]);
    expect(terms).toBeGreaterThan(3);
  }, 120_000);
});

/**
 * An overlap as the failure shows it: who still believed it led (since when, on which lease) when
 * another candidate's campaign returned, and whether etcd still had the first one's lease then:
 * gone means etcd ended a lease its holder still counted on, alive means two keys led at once.
 */
async function describeOverlap(
  witness: Client,
  leading: { candidate: number; lease: bigint; since: number },
  winner: { candidate: number; lease: bigint; since: number },
  t0: number,
): Promise<string> {
  const etcdSays = await witness.lease.timeToLive(leading.lease).then(
    ({ ttl }) => (ttl < 0n ? "gone" : `alive, ${ttl} s left`),
    (err: unknown) => `unknown (${String(err)})`,
  );
  return (
    `at ${winner.since - t0} ms candidate ${winner.candidate} (lease ${winner.lease.toString(16)}) won while candidate ` +
    `${leading.candidate} (lease ${leading.lease.toString(16)}, leading since ${leading.since - t0} ms) still led; etcd: its lease ${etcdSays}`
  );
}

describe("STM", () => {
  const isolations: Isolation[] = ["serializable-snapshot", "serializable", "repeatable-reads"];
  it.each(isolations)("keeps the total of concurrent bank transfers (%s)", async (isolation) => {
    const p = uniquePrefix();
    const accounts = Array.from({ length: 5 }, (_, i) => `${p}account${i}`);
    for (const a of accounts) await etcd.client.kv.put(a, "100");
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        await using client = clientFor(etcd.cluster);
        for (let t = 0; t < 15; t++) {
          const from = accounts[Math.floor(Math.random() * accounts.length)]!;
          const to = accounts[Math.floor(Math.random() * accounts.length)]!;
          if (from === to) continue;
          await runStm(
            client,
            async (stm) => {
              const balance = Number(await stm.get(from));
              const amount = Math.min(balance, 1 + Math.floor(Math.random() * 20));
              stm.put(from, String(balance - amount));
              stm.put(to, String(Number(await stm.get(to)) + amount));
            },
            { isolation },
          );
        }
      }),
    );
    const balances = await Promise.all(accounts.map(async (a) => Number((await etcd.client.kv.get(a)).kvs[0]!.valueString)));
    expect(balances.reduce((x, y) => x + y, 0)).toBe(500);
    expect(balances.every((b) => b >= 0)).toBe(true);
  }, 60_000);

  it.each(isolations)("notices a key deleted after it was read and runs again (%s)", async (isolation) => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}x`, "1");
    let attempts = 0;
    await runStm(
      etcd.client,
      async (stm) => {
        attempts++;
        const x = await stm.get(`${p}x`);
        if (attempts === 1) await etcd.client.kv.delete(`${p}x`);
        stm.put(`${p}copy`, x ?? "gone");
      },
      { isolation },
    );
    expect(attempts).toBe(2);
    expect((await etcd.client.kv.get(`${p}copy`)).kvs[0]?.valueString).toBe("gone");
  });

  it("reads its own writes, deletes, and returns what apply returned", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}a`, "1");
    const result = await runStm(
      etcd.client,
      async (stm) => {
        stm.put(`${p}b`, "2");
        stm.delete(`${p}a`);
        return [await stm.get(`${p}a`), await stm.get(`${p}b`), await stm.rev(`${p}missing`)];
      },
      { prefetch: [`${p}a`] },
    );
    expect(result).toEqual([undefined, "2", 0n]);
    expect((await etcd.client.kv.get(`${p}a`)).count).toBe(0n);
    expect((await etcd.client.kv.get(`${p}b`)).kvs[0]?.valueString).toBe("2");
  });
});
