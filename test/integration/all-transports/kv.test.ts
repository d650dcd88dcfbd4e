import { Status } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import {
  CallCanceledError,
  DeadlineExceededError,
  ErrCompacted,
  ErrEmptyKey,
  EtcdServerError,
  ErrFutureRev,
  ErrKeyNotFound,
  ErrValueProvided,
  InvalidArgumentError,
} from "../../../src/index.js";
import { bytes, clientFor, grantLeaseViaGateway, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

/** Writes keys p+name in order and returns the revision of each write. */
async function putAll(p: string, entries: [string, string][], via = etcd.client): Promise<bigint[]> {
  const revisions: bigint[] = [];
  for (const [k, v] of entries) revisions.push((await via.kv.put(p + k, v)).header.revision);
  return revisions;
}

const keysOf = (res: { kvs: { keyString: string }[] }, p: string) => res.kvs.map((kv) => kv.keyString.slice(p.length));

describe("get", () => {
  it("reads one key with its metadata", async () => {
    const p = uniquePrefix();
    const first = await etcd.client.kv.put(`${p}a`, "1");
    const second = await etcd.client.kv.put(`${p}a`, "2");
    const res = await etcd.client.kv.get(`${p}a`);
    expect(res.kvs).toHaveLength(1);
    const kv = res.kvs[0]!;
    expect(kv.keyString).toBe(`${p}a`);
    expect(kv.valueString).toBe("2");
    expect(bytes(kv.value)).toEqual(new TextEncoder().encode("2"));
    expect(kv.createRevision).toBe(first.header.revision);
    expect(kv.modRevision).toBe(second.header.revision);
    expect(kv.version).toBe(2n);
    expect(kv.lease).toBe(0n);
    expect(res.count).toBe(1n);
    expect(res.more).toBe(false);
    expect(res.header.revision).toBeGreaterThanOrEqual(second.header.revision);
    expect(res.header.clusterId).toBeGreaterThan(0n);
    expect(res.header.memberId).toBeGreaterThan(0n);
    expect(res.header.raftTerm).toBeGreaterThan(0n);
  });

  it("returns nothing for a missing key", async () => {
    const res = await etcd.client.kv.get(`${uniquePrefix()}missing`);
    expect(res.kvs).toEqual([]);
    expect(res.count).toBe(0n);
  });

  it("reads a range, a prefix and from a key", async () => {
    const p = uniquePrefix();
    await putAll(p, [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]]);
    expect(keysOf(await etcd.client.kv.get(`${p}b`, { end: `${p}d` }), p)).toEqual(["b", "c"]);
    expect(keysOf(await etcd.client.kv.get(p, { prefix: true }), p)).toEqual(["a", "b", "c", "d"]);
    const fromC = await etcd.client.kv.get(`${p}c`, { fromKey: true });
    expect(keysOf(fromC, p).slice(0, 2)).toEqual(["c", "d"]);
    expect(fromC.kvs.every((kv) => kv.keyString >= `${p}c`)).toBe(true);
  });

  it("limits, reporting more and the full count", async () => {
    const p = uniquePrefix();
    await putAll(p, [["a", "1"], ["b", "2"], ["c", "3"]]);
    const res = await etcd.client.kv.get(p, { prefix: true, limit: 2 });
    expect(keysOf(res, p)).toEqual(["a", "b"]);
    expect(res.more).toBe(true);
    expect(res.count).toBe(3n);
    const all = await etcd.client.kv.get(p, { prefix: true, limit: 0n });
    expect(all.kvs).toHaveLength(3);
    expect(all.more).toBe(false);
  });

  it("reads at an older revision", async () => {
    const p = uniquePrefix();
    const [rev1] = await putAll(p, [["k", "old"], ["k", "new"]]);
    expect((await etcd.client.kv.get(`${p}k`, { revision: rev1! })).kvs[0]?.valueString).toBe("old");
    expect((await etcd.client.kv.get(`${p}k`)).kvs[0]?.valueString).toBe("new");
  });

  it("sorts by every target in both orders", async () => {
    const p = uniquePrefix();
    // Written so that key, value, version, create and mod orders all differ.
    await putAll(p, [["b", "z"], ["a", "y"], ["c", "x"], ["a", "w"], ["a", "v"], ["b", "u"]]);
    const sorted = async (target: "key" | "version" | "create" | "mod" | "value", order: "ascend" | "descend") =>
      keysOf(await etcd.client.kv.get(p, { prefix: true, sort: { target, order } }), p);
    expect(await sorted("key", "ascend")).toEqual(["a", "b", "c"]);
    expect(await sorted("key", "descend")).toEqual(["c", "b", "a"]);
    expect(await sorted("value", "ascend")).toEqual(["b", "a", "c"]); // u, v, x
    expect(await sorted("value", "descend")).toEqual(["c", "a", "b"]);
    expect(await sorted("version", "ascend")).toEqual(["c", "b", "a"]); // 1, 2, 3
    expect(await sorted("version", "descend")).toEqual(["a", "b", "c"]);
    expect(await sorted("create", "ascend")).toEqual(["b", "a", "c"]);
    expect(await sorted("create", "descend")).toEqual(["c", "a", "b"]);
    expect(await sorted("mod", "ascend")).toEqual(["c", "a", "b"]);
    expect(await sorted("mod", "descend")).toEqual(["b", "a", "c"]);
    // A target alone sorts ascending; so does etcd itself when told order none with a target other than key.
    expect(keysOf(await etcd.client.kv.get(p, { prefix: true, sort: { target: "value" } }), p)).toEqual(["b", "a", "c"]);
    expect(keysOf(await etcd.client.kv.get(p, { prefix: true, sort: { target: "value", order: "none" } }), p)).toEqual(["b", "a", "c"]);
  });

  it("reads serializably, keys only and counts only", async () => {
    const p = uniquePrefix();
    await putAll(p, [["a", "1"], ["b", "2"]]);
    const serializable = await etcd.client.kv.get(p, { prefix: true, serializable: true });
    expect(serializable.kvs.map((kv) => kv.valueString)).toEqual(["1", "2"]);
    const keysOnly = await etcd.client.kv.get(p, { prefix: true, keysOnly: true });
    expect(keysOf(keysOnly, p)).toEqual(["a", "b"]);
    expect(keysOnly.kvs.every((kv) => kv.value.length === 0)).toBe(true);
    const countOnly = await etcd.client.kv.get(p, { prefix: true, countOnly: true });
    expect(countOnly.kvs).toEqual([]);
    expect(countOnly.count).toBe(2n);
  });

  it("filters by mod and create revision", async () => {
    const p = uniquePrefix();
    const [ra, rb, rc] = await putAll(p, [["a", "1"], ["b", "1"], ["c", "1"]]);
    const rb2 = (await etcd.client.kv.put(`${p}b`, "2")).header.revision;
    const get = (o: object) => etcd.client.kv.get(p, { prefix: true, ...o }).then((r) => keysOf(r, p));
    expect(await get({ minModRevision: rc })).toEqual(["b", "c"]);
    expect(await get({ maxModRevision: rc })).toEqual(["a", "c"]);
    expect(await get({ minCreateRevision: rb })).toEqual(["b", "c"]);
    expect(await get({ maxCreateRevision: rb })).toEqual(["a", "b"]);
    expect(await get({ minModRevision: rb2, maxModRevision: rb2 })).toEqual(["b"]);
    expect(await get({ minCreateRevision: ra, maxCreateRevision: ra })).toEqual(["a"]);
  });

  it("round-trips arbitrary bytes and JSON", async () => {
    const key = new Uint8Array([0x00, 0xff, 0xfe, 0x80, 0x01]);
    const value = new Uint8Array(256).map((_, i) => i);
    await etcd.client.kv.put(key, value);
    const res = await etcd.client.kv.get(key);
    expect(bytes(res.kvs[0]!.key)).toEqual(key);
    expect(bytes(res.kvs[0]!.value)).toEqual(value);
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}json`, JSON.stringify({ n: 1, s: "ü" }));
    expect((await etcd.client.kv.get(`${p}json`)).kvs[0]?.json()).toEqual({ n: 1, s: "ü" });
  });
});

describe("put", () => {
  it("rejects an empty key with ErrEmptyKey, naming the endpoint that answered", async () => {
    const err = await etcd.client.kv.put("", "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErrEmptyKey);
    expect(err).toBeInstanceOf(EtcdServerError);
    const serverError = err as EtcdServerError;
    expect(serverError.name).toBe("ErrEmptyKey");
    expect(serverError.code).toBe(Status.INVALID_ARGUMENT);
    expect(serverError.serverMessage).toBe("etcdserver: key is not provided");
    expect(serverError.endpoint).toBe(etcd.cluster.endpoints[0]);
  });

  it("returns the previous key only when asked", async () => {
    const p = uniquePrefix();
    expect((await etcd.client.kv.put(`${p}k`, "1", { prevKv: true })).prevKv).toBeUndefined();
    expect((await etcd.client.kv.put(`${p}k`, "2")).prevKv).toBeUndefined();
    const res = await etcd.client.kv.put(`${p}k`, "3", { prevKv: true });
    expect(res.prevKv?.valueString).toBe("2");
    expect(res.prevKv?.version).toBe(2n);
  });

  it("writes a response's header and key-value as etcd's JSON, without the SDK's internals", async () => {
    const p = uniquePrefix();
    const bigId = (1n << 62n) + 777n;
    const lease = await grantLeaseViaGateway(etcd.cluster, bigId, 600);
    await etcd.client.kv.put(`${p}k`, new Uint8Array([0, 255, 1]), { lease });
    const res = await etcd.client.kv.put(`${p}k`, "2", { prevKv: true });
    const { header, prevKv } = JSON.parse(JSON.stringify(res)) as { header: Record<string, string>; prevKv: Record<string, string> };
    expect(header).toEqual({
      clusterId: String(res.header.clusterId),
      memberId: String(res.header.memberId),
      revision: String(res.header.revision),
      raftTerm: String(res.header.raftTerm),
    });
    const kv = res.prevKv!;
    expect(prevKv).toEqual({
      key: Buffer.from(`${p}k`).toString("base64"),
      value: "AP8B",
      createRevision: String(kv.createRevision),
      modRevision: String(kv.modRevision),
      version: "1",
      lease: String(bigId),
    });
  });

  it("shows a header and a key-value to console.log by their public fields", async () => {
    const { inspect } = await import("node:util");
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}k`, "1");
    const res = await etcd.client.kv.put(`${p}k`, "2", { prevKv: true });
    const shown = inspect(res, { depth: 4, breakLength: Infinity });
    expect(shown).toContain(`header: ResponseHeader { clusterId: ${res.header.clusterId}n, memberId: ${res.header.memberId}n, revision: ${res.header.revision}n, raftTerm: ${res.header.raftTerm}n }`);
    // Over the gateway key and value are Uint8Arrays, which inspect spreads over lines.
    expect(shown).toMatch(/prevKv: KeyValue \{\s+key: [\s\S]*?,\s+value: [\s\S]*?,\s+createRevision: \d+n,\s+modRevision: \d+n,\s+version: 1n,\s+lease: 0n\s+\}/);
    expect(shown).not.toMatch(/origin|storeRevision|leaseId/);
  });

  it("attaches leases whose IDs use all 63 bits, and keeps value or lease when told", async () => {
    const p = uniquePrefix();
    // Above 2^53: a double could not hold this ID exactly.
    const bigId = (1n << 62n) + 12345n;
    const lease = await grantLeaseViaGateway(etcd.cluster, bigId, 600);
    expect(lease).toBe(bigId);
    await etcd.client.kv.put(`${p}k`, "v1", { lease });
    expect((await etcd.client.kv.get(`${p}k`)).kvs[0]?.lease).toBe(bigId);

    await etcd.client.kv.put(`${p}k`, "v2", { ignoreLease: true });
    const afterIgnoreLease = (await etcd.client.kv.get(`${p}k`)).kvs[0]!;
    expect(afterIgnoreLease.valueString).toBe("v2");
    expect(afterIgnoreLease.lease).toBe(bigId);

    const other = await grantLeaseViaGateway(etcd.cluster, (1n << 53n) + 1n, 600);
    await etcd.client.kv.put(`${p}k`, "", { lease: other, ignoreValue: true });
    const afterIgnoreValue = (await etcd.client.kv.get(`${p}k`)).kvs[0]!;
    expect(afterIgnoreValue.valueString).toBe("v2");
    expect(afterIgnoreValue.lease).toBe((1n << 53n) + 1n);
  });

  it("rejects ignoreValue on a missing key and with a value given", async () => {
    const p = uniquePrefix();
    await expect(etcd.client.kv.put(`${p}missing`, "", { ignoreValue: true })).rejects.toBeInstanceOf(ErrKeyNotFound);
    await etcd.client.kv.put(`${p}k`, "v");
    await expect(etcd.client.kv.put(`${p}k`, "x", { ignoreValue: true })).rejects.toBeInstanceOf(ErrValueProvided);
  });
});

describe("delete", () => {
  it("deletes one key, a range, a prefix and from a key, returning previous keys when asked", async () => {
    const p = uniquePrefix();
    await putAll(p, [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"]]);
    const one = await etcd.client.kv.delete(`${p}a`, { prevKv: true });
    expect(one.deleted).toBe(1n);
    expect(one.prevKvs.map((kv) => kv.valueString)).toEqual(["1"]);
    const range = await etcd.client.kv.delete(`${p}b`, { end: `${p}d` });
    expect(range.deleted).toBe(2n);
    expect(range.prevKvs).toEqual([]);
    expect(keysOf(await etcd.client.kv.get(p, { prefix: true }), p)).toEqual(["d", "e"]);
    const fromKey = await etcd.client.kv.delete(`${p}e`, { fromKey: true, prevKv: true });
    expect(fromKey.prevKvs.map((kv) => kv.keyString)).toContain(`${p}e`);
    const prefix = await etcd.client.kv.delete(p, { prefix: true });
    expect(prefix.deleted).toBe(1n);
    expect((await etcd.client.kv.get(p, { prefix: true })).count).toBe(0n);
    expect((await etcd.client.kv.delete(`${p}nothing`)).deleted).toBe(0n);
  });
});

describe("compact", () => {
  it("discards old revisions, physically when asked, and rejects future revisions", async () => {
    // Compaction is cluster-wide, so this test has a cluster of its own.
    const own = await startCluster();
    const c = clientFor(own);
    try {
      const p = uniquePrefix();
      const [old] = await putAll(p, [["k", "1"], ["k", "2"], ["k", "3"]], c);
      const current = (await c.kv.get(`${p}k`)).header.revision;
      await c.kv.compact(current - 1n);
      await expect(c.kv.get(`${p}k`, { revision: old! })).rejects.toBeInstanceOf(ErrCompacted);
      const compacted = await c.kv.compact(current, { physical: true });
      expect(compacted.header.revision).toBeGreaterThanOrEqual(current);
      expect((await c.kv.get(`${p}k`)).kvs[0]?.valueString).toBe("3");
      await expect(c.kv.compact(current + 1000n)).rejects.toBeInstanceOf(ErrFutureRev);
      await expect(c.kv.get(`${p}k`, { revision: current + 1000n })).rejects.toBeInstanceOf(ErrFutureRev);
    } finally {
      c.close();
      await own.close();
    }
  });
});

describe("bad input", () => {
  it("names the problem and sends nothing", async () => {
    const p = uniquePrefix();
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => etcd.client.kv.get(p, { prefix: true, end: "z" }), /get options take only one of end, prefix and fromKey/],
      [() => etcd.client.kv.get(p, { limit: -1 }), /get limit must not be negative/],
      [() => etcd.client.kv.get(p, { revision: 1.5 }), /get revision must be a bigint or a safe integer/],
      [() => etcd.client.kv.get(p, { revision: 1n << 63n }), /get revision is outside the int64 range/],
      [() => etcd.client.kv.get(p, { sort: { target: "size" as never } }), /get sort.target must be one of key, version, create, mod, value/],
      [() => etcd.client.kv.get(p, { sort: { order: "up" as never } }), /get sort.order must be one of none, ascend, descend/],
      [() => etcd.client.kv.put(42 as never, "v"), /put key must be a string or a Uint8Array, got number 42/],
      [() => etcd.client.kv.put(`${p}k`, { v: 1 } as never), /put value must be a string or a Uint8Array, got a Object/],
      [() => etcd.client.kv.delete(p, { fromKey: true, prefix: true }), /delete options take only one/],
      [() => etcd.client.kv.compact(-1), /compact revision must not be negative/],
    ];
    for (const [call, message] of cases) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
    expect((await etcd.client.kv.get(p, { prefix: true })).count).toBe(0n);
  });
});

describe("cancellation", () => {
  it("rejects with CallCanceledError when the signal fires and DeadlineExceededError past the deadline", async () => {
    const controller = new AbortController();
    controller.abort(new Error("caller gave up"));
    const canceled = await etcd.client.kv.get("k", { signal: controller.signal }).catch((e: unknown) => e);
    expect(canceled).toBeInstanceOf(CallCanceledError);
    // A frozen member never answers, so only the deadline can end the call.
    await etcd.cluster.members[0]!.pause();
    try {
      const started = Date.now();
      const late = await etcd.client.kv.get("k", { deadline: 300 }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(DeadlineExceededError);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      etcd.cluster.members[0]!.resume();
    }
    // The client stays usable.
    await etcd.client.kv.put(`${uniquePrefix()}after`, "ok");
  });
});
