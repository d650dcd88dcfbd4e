/**
 * Leases of the in-memory etcd on a ManualClock: a test moves time itself, and a lease runs
 * out at the instant its TTL has passed since it was granted or last renewed, its keys deleted
 * in one revision that watchers see.
 */
import { afterEach, describe, expect, it } from "vitest";
import { InvalidArgumentError, ManualClock, MemoryEtcd, type MemoryClient, type WatchResponse } from "../../../src/testing.js";

let etcd: MemoryEtcd | undefined;
afterEach(async () => {
  await etcd?.close();
  etcd = undefined;
});

function start(): { clock: ManualClock; client: MemoryClient } {
  const clock = new ManualClock();
  etcd = new MemoryEtcd({ clock });
  return { clock, client: etcd.client() };
}

const keys = (r: { kvs: { keyString: string }[] }) => r.kvs.map((kv) => kv.keyString);

describe("leases on a ManualClock", () => {
  it("run out when the clock passes their TTL, deleting their keys, and not a millisecond before", async () => {
    const { clock, client } = start();
    const { id } = await client.lease.grant(10);
    await client.kv.put("a", "1", { lease: id });
    clock.advance(9_999);
    expect((await client.lease.timeToLive(id)).ttl).toBe(0n); // whole seconds left, rounded down as etcd does
    expect((await client.kv.get("a")).count).toBe(1n);
    clock.advance(1);
    expect((await client.kv.get("a")).count).toBe(0n);
    expect((await client.lease.timeToLive(id)).ttl).toBe(-1n);
    expect((await client.lease.leases()).ids).toEqual([]);
  });

  it("live their TTL again from each renewal", async () => {
    const { clock, client } = start();
    const { id } = await client.lease.grant(10);
    clock.advance(8_000);
    expect(await client.lease.keepAliveOnce(id)).toBe(10n);
    clock.advance(8_000);
    expect((await client.lease.timeToLive(id)).ttl).toBe(2n);
    clock.advance(2_000);
    expect((await client.lease.timeToLive(id)).ttl).toBe(-1n);
  });

  it("are granted etcd's minimum TTL of 2 s when asked for less, and report the TTL granted", async () => {
    const { clock, client } = start();
    const granted = await client.lease.grant(1);
    expect(granted.ttl).toBe(2n);
    clock.advance(1_500);
    const ttl = await client.lease.timeToLive(granted.id);
    expect([ttl.ttl, ttl.grantedTtl]).toEqual([0n, 2n]);
  });

  it("delete their keys in one revision, in key order, which a watcher sees", async () => {
    const { clock, client } = start();
    const { id } = await client.lease.grant(5);
    for (const key of ["s/b", "s/a", "s/c"]) await client.kv.put(key, "v", { lease: id });
    await client.kv.put("s/kept", "v");
    const watcher = client.watch("s/", { prefix: true, prevKv: true });
    await watcher.ready;
    clock.advance(5_000);
    const { value } = (await watcher.next()) as IteratorYieldResult<WatchResponse>;
    expect(value.events.map((e) => `${e.type} ${e.kv.keyString} (was ${e.prevKv?.valueString})`)).toEqual(["delete s/a (was v)", "delete s/b (was v)", "delete s/c (was v)"]);
    expect(new Set(value.events.map((e) => e.kv.modRevision))).toEqual(new Set([value.header.revision]));
    expect(keys(await client.kv.get("s/", { prefix: true }))).toEqual(["s/kept"]);
    watcher.cancel();
  });

  it("run out in the order of their expiry, each in a revision of its own", async () => {
    const { clock, client } = start();
    const late = await client.lease.grant(20);
    const early = await client.lease.grant(10);
    await client.kv.put("late", "v", { lease: late.id });
    await client.kv.put("early", "v", { lease: early.id });
    expect((await client.lease.leases()).ids).toEqual([early.id, late.id]);
    const before = (await client.kv.get("x")).header.revision;
    clock.advance(60_000);
    const watcher = client.watch("", { prefix: true, startRevision: before + 1n });
    const { value } = (await watcher.next()) as IteratorYieldResult<WatchResponse>;
    expect(value.events.map((e) => `${e.kv.keyString}@${e.kv.modRevision - before}`)).toEqual(["early@1", "late@2"]);
    watcher.cancel();
  });

  it("can be granted with IDs of all 63 bits, and the server chooses IDs that do not collide", async () => {
    const { client } = start();
    const big = (1n << 63n) - 1n;
    expect((await client.lease.grant(30, { id: big })).id).toBe(big);
    const chosen = await Promise.all([1, 2, 3].map(() => client.lease.grant(30)));
    expect(new Set(chosen.map((l) => l.id)).size).toBe(3);
    expect(chosen.every((l) => l.id > 0n)).toBe(true);
  });
});

describe("ManualClock", () => {
  it("fires timers in the order they fall due, each at its own instant, as advance passes them", () => {
    const clock = new ManualClock(1_000);
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`b@${clock.now()}`), 200);
    clock.setTimer(() => fired.push(`a@${clock.now()}`), 100);
    const cancel = clock.setTimer(() => fired.push("cancelled"), 150);
    clock.setTimer(() => {
      fired.push(`c@${clock.now()}`);
      // A timer set by a timer fires within the same advance when it falls due within it.
      clock.setTimer(() => fired.push(`d@${clock.now()}`), 50);
    }, 200);
    cancel();
    clock.advance(249);
    expect(fired).toEqual(["a@1100", "b@1200", "c@1200"]);
    expect(clock.now()).toBe(1_249);
    clock.advance(1);
    expect(fired.at(-1)).toBe("d@1250");
  });

  it("refuses to go back or to a time that is not a number", () => {
    const clock = new ManualClock();
    expect(() => clock.advance(-1)).toThrow(InvalidArgumentError);
    expect(() => clock.advance(Number.NaN)).toThrow(/advance ms must be a finite number/);
    expect(() => new ManualClock(Number.POSITIVE_INFINITY)).toThrow(InvalidArgumentError);
  });
});
