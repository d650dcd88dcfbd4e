import { describe, expect, it } from "vitest";
import { compare, Mutex, op, Session, type WatchResponse } from "../../../src/index.js";
import { uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();
const keys = (r: { kvs: { keyString: string }[] }) => r.kvs.map((kv) => kv.keyString);

describe("namespace", () => {
  it("puts every key under the prefix and shows it without, for keys, ranges, prefixes and from-key", async () => {
    const root = etcd.client;
    const p = uniquePrefix();
    const ns = root.namespace(`${p}app/`);
    await root.kv.put(`${p}before`, "outside");
    await root.kv.put(`${p}app0`, "outside, just after the namespace");
    for (const k of ["a", "b", "c"]) await ns.kv.put(k, k.toUpperCase());
    expect(keys(await root.kv.get(`${p}app/`, { prefix: true }))).toEqual([`${p}app/a`, `${p}app/b`, `${p}app/c`]);
    expect((await ns.kv.get("b")).kvs[0]?.valueString).toBe("B");
    expect(keys(await ns.kv.get("", { prefix: true }))).toEqual(["a", "b", "c"]);
    expect(keys(await ns.kv.get("", { fromKey: true }))).toEqual(["a", "b", "c"]);
    expect(keys(await ns.kv.get("b", { fromKey: true }))).toEqual(["b", "c"]);
    expect(keys(await ns.kv.get("a", { end: "c" }))).toEqual(["a", "b"]);
    const put = await ns.kv.put("a", "A2", { prevKv: true });
    expect(put.prevKv?.keyString).toBe("a");
    const deleted = await ns.kv.delete("", { prefix: true, prevKv: true });
    expect(deleted.prevKvs.map((kv) => kv.keyString)).toEqual(["a", "b", "c"]);
    expect(keys(await root.kv.get(p, { prefix: true }))).toEqual([`${p}app0`, `${p}before`]);
  });

  it("namespaces transactions, nested ones included", async () => {
    const p = uniquePrefix();
    const ns = etcd.client.namespace(`${p}ns/`);
    await ns.kv.put("k", "1");
    const res = await ns
      .txn()
      .if(compare.value("k", "=", "1"), compare.version("", ">", 0, { prefix: true }))
      .then(op.put("k", "2"), op.get("", { prefix: true }), op.txn({ then: [op.delete("gone", { prevKv: true }), op.get("k")] }))
      .commit();
    if (!res.succeeded) throw new Error("compares on namespaced keys should hold");
    expect(keys(res.results[1])).toEqual(["k"]);
    const inner = res.results[2];
    if (!inner.succeeded) throw new Error("empty if");
    expect(keys(inner.results[1])).toEqual(["k"]);
    expect((await etcd.client.kv.get(`${p}ns/k`)).kvs[0]?.valueString).toBe("2");
  });

  it("namespaces watches and lease key lists, and nests", async () => {
    const p = uniquePrefix();
    const ns = etcd.client.namespace(`${p}w/`);
    const watcher = ns.watch("", { prefix: true, prevKv: true });
    await watcher.ready;
    await etcd.client.kv.put(`${p}other`, "not in the namespace");
    await ns.kv.put("x", "1");
    await ns.kv.put("x", "2");
    const seen: WatchResponse[] = [];
    for await (const r of watcher) {
      seen.push(r);
      if (seen.flatMap((s) => s.events).length === 2) break;
    }
    const events = seen.flatMap((s) => s.events);
    expect(events.map((e) => e.kv.keyString)).toEqual(["x", "x"]);
    expect(events[1]?.prevKv?.keyString).toBe("x");

    const lease = await ns.lease.grant(30);
    await ns.kv.put("leased", "v", { lease: lease.id });
    await etcd.client.kv.put(`${p}outside`, "v", { lease: lease.id });
    const ttl = await ns.lease.timeToLive(lease.id, { keys: true });
    expect(ttl.keys.map((k) => Buffer.from(k).toString())).toEqual(["leased"]);

    const nested = ns.namespace("inner/");
    await nested.kv.put("deep", "v");
    expect((await etcd.client.kv.get(`${p}w/inner/deep`)).count).toBe(1n);
    expect(keys(await ns.kv.get("inner/", { prefix: true }))).toEqual(["inner/deep"]);
    await ns.lease.revoke(lease.id);
  });

  it("runs the concurrency recipes inside a namespace", async () => {
    const p = uniquePrefix();
    const ns = etcd.client.namespace(`${p}locks/`);
    await using session = await Session.create(ns, { ttl: 10 });
    const mutex = new Mutex(session, "m");
    await mutex.lock();
    expect(mutex.key?.startsWith("m/")).toBe(true);
    expect((await etcd.client.kv.get(`${p}locks/m/`, { prefix: true })).count).toBe(1n);
    await mutex.unlock();
  });
});
