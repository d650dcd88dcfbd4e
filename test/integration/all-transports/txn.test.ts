import { describe, expect, expectTypeOf, it } from "vitest";
import {
  compare,
  type DeleteResponse,
  ErrDuplicateKey,
  ErrTooManyOps,
  type GetResponse,
  InvalidArgumentError,
  op,
  type PutResponse,
  type TxnResponse,
} from "../../../src/index.js";
import { grantLeaseViaGateway, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

/** Runs a txn whose only job is to report whether `condition` holds. */
async function holds(condition: ReturnType<typeof compare.value>): Promise<boolean> {
  return (await etcd.client.txn().if(condition).commit()).succeeded;
}

describe("compares", () => {
  it("compares values with =, !=, < and >", async () => {
    const k = `${uniquePrefix()}k`;
    await etcd.client.kv.put(k, "m");
    expect(await holds(compare.value(k, "=", "m"))).toBe(true);
    expect(await holds(compare.value(k, "=", "x"))).toBe(false);
    expect(await holds(compare.value(k, "!=", "x"))).toBe(true);
    expect(await holds(compare.value(k, "!=", "m"))).toBe(false);
    expect(await holds(compare.value(k, "<", "n"))).toBe(true);
    expect(await holds(compare.value(k, "<", "a"))).toBe(false);
    expect(await holds(compare.value(k, ">", "a"))).toBe(true);
    expect(await holds(compare.value(k, ">", "z"))).toBe(false);
    expect(await holds(compare.value(k, "=", new TextEncoder().encode("m")))).toBe(true);
  });

  it("compares versions, treating a missing key as version 0", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}k`, "1");
    await etcd.client.kv.put(`${p}k`, "2");
    expect(await holds(compare.version(`${p}k`, "=", 2))).toBe(true);
    expect(await holds(compare.version(`${p}k`, ">", 1n))).toBe(true);
    expect(await holds(compare.version(`${p}k`, "<", 2))).toBe(false);
    expect(await holds(compare.version(`${p}k`, "!=", 3))).toBe(true);
    expect(await holds(compare.version(`${p}missing`, "=", 0))).toBe(true);
  });

  it("compares create and mod revisions", async () => {
    const k = `${uniquePrefix()}k`;
    const created = (await etcd.client.kv.put(k, "1")).header.revision;
    const modified = (await etcd.client.kv.put(k, "2")).header.revision;
    expect(await holds(compare.createRevision(k, "=", created))).toBe(true);
    expect(await holds(compare.createRevision(k, "<", modified))).toBe(true);
    expect(await holds(compare.modRevision(k, "=", modified))).toBe(true);
    expect(await holds(compare.modRevision(k, ">", created))).toBe(true);
    expect(await holds(compare.modRevision(k, "!=", modified))).toBe(false);
  });

  it("compares leases, including IDs above 2^53", async () => {
    const p = uniquePrefix();
    const lease = await grantLeaseViaGateway(etcd.cluster, (1n << 60n) + 7n, 600);
    await etcd.client.kv.put(`${p}leased`, "v", { lease });
    await etcd.client.kv.put(`${p}plain`, "v");
    expect(await holds(compare.lease(`${p}leased`, "=", lease))).toBe(true);
    expect(await holds(compare.lease(`${p}leased`, "=", lease + 1n))).toBe(false);
    expect(await holds(compare.lease(`${p}plain`, "=", 0))).toBe(true);
    expect(await holds(compare.lease(`${p}plain`, ">", 0))).toBe(false);
  });

  it("compares every key of a range or prefix", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}a`, "same");
    await etcd.client.kv.put(`${p}b`, "same");
    expect(await holds(compare.value(p, "=", "same", { prefix: true }))).toBe(true);
    expect(await holds(compare.value(`${p}a`, "=", "same", { end: `${p}c` }))).toBe(true);
    await etcd.client.kv.put(`${p}b`, "different");
    expect(await holds(compare.value(p, "=", "same", { prefix: true }))).toBe(false);
    expect(await holds(compare.value(`${p}a`, "=", "same", { end: `${p}b` }))).toBe(true);
  });

  it("requires every compare to hold", async () => {
    const k = `${uniquePrefix()}k`;
    await etcd.client.kv.put(k, "v");
    expect((await etcd.client.txn().if(compare.value(k, "=", "v"), compare.version(k, "=", 1)).commit()).succeeded).toBe(true);
    expect((await etcd.client.txn().if(compare.value(k, "=", "v"), compare.version(k, "=", 2)).commit()).succeeded).toBe(false);
  });
});

describe("branches", () => {
  it("runs then or else, with results typed per branch", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}k`, "old");
    const run = (expected: string) =>
      etcd.client
        .txn()
        .if(compare.value(`${p}k`, "=", expected))
        .then(op.put(`${p}k`, "new", { prevKv: true }), op.get(`${p}k`), op.delete(`${p}gone`))
        .else(op.get(`${p}k`))
        .commit();

    const miss = await run("nope");
    expectTypeOf(miss).toEqualTypeOf<
      TxnResponse<readonly [ReturnType<typeof op.put>, ReturnType<typeof op.get>, ReturnType<typeof op.delete>], readonly [ReturnType<typeof op.get>]>
    >();
    expect(miss.succeeded).toBe(false);
    if (miss.succeeded) throw new Error("unreachable");
    expectTypeOf(miss.results).toEqualTypeOf<[GetResponse]>();
    expect(miss.results[0].kvs[0]?.valueString).toBe("old");

    await etcd.client.kv.put(`${p}gone`, "x");
    const hit = await run("old");
    expect(hit.succeeded).toBe(true);
    if (!hit.succeeded) throw new Error("unreachable");
    expectTypeOf(hit.results).toEqualTypeOf<[PutResponse, GetResponse, DeleteResponse]>();
    const [put, get, del] = hit.results;
    expect(put.prevKv?.valueString).toBe("old");
    expect(get.kvs[0]?.valueString).toBe("new");
    expect(del.deleted).toBe(1n);
    // All writes of a txn happen at the txn's one revision.
    expect(get.kvs[0]?.modRevision).toBe(hit.header.revision);
  });

  it("runs range and prefix operations inside a branch", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}a`, "1");
    await etcd.client.kv.put(`${p}b`, "2");
    const res = await etcd.client
      .txn()
      .then(op.get(p, { prefix: true, countOnly: true }), op.delete(p, { prefix: true, prevKv: true }), op.get(p, { prefix: true }))
      .commit();
    if (!res.succeeded) throw new Error("an empty if always holds");
    expect(res.results[0].count).toBe(2n);
    expect(res.results[1].prevKvs.map((kv) => kv.valueString)).toEqual(["1", "2"]);
    expect(res.results[2].kvs).toEqual([]);
  });

  it("nests transactions", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}outer`, "1");
    const res = await etcd.client
      .txn()
      .if(compare.value(`${p}outer`, "=", "1"))
      .then(
        op.txn({
          if: [compare.version(`${p}inner`, "=", 0)],
          then: [op.put(`${p}inner`, "created")],
          else: [op.get(`${p}inner`)],
        }),
      )
      .commit();
    if (!res.succeeded) throw new Error("outer compare should hold");
    const inner = res.results[0];
    expect(inner.succeeded).toBe(true);
    if (!inner.succeeded) throw new Error("unreachable");
    expectTypeOf(inner.results).toEqualTypeOf<[PutResponse]>();
    expect(inner.results[0].header.revision).toBe(res.header.revision);
    expect((await etcd.client.kv.get(`${p}inner`)).kvs[0]?.valueString).toBe("created");
  });

  it("commits an empty transaction as succeeded", async () => {
    const res = await etcd.client.txn().commit();
    expect(res.succeeded).toBe(true);
    expect(res.results).toEqual([]);
  });
});

describe("errors", () => {
  it("rejects two writes of one key with ErrDuplicateKey and writes nothing", async () => {
    const p = uniquePrefix();
    await expect(etcd.client.txn().then(op.put(`${p}k`, "1"), op.put(`${p}k`, "2")).commit()).rejects.toBeInstanceOf(ErrDuplicateKey);
    expect((await etcd.client.kv.get(`${p}k`)).count).toBe(0n);
  });

  it("rejects more operations than the server allows with ErrTooManyOps", async () => {
    const p = uniquePrefix();
    const ops = Array.from({ length: 129 }, (_, i) => op.put(`${p}${i}`, "v"));
    await expect(etcd.client.txn().then(...ops).commit()).rejects.toBeInstanceOf(ErrTooManyOps);
    expect((await etcd.client.kv.get(p, { prefix: true })).count).toBe(0n);
  });

  it("rejects builder misuse and malformed parts before sending", async () => {
    const k = `${uniquePrefix()}k`;
    const thenFirst = etcd.client.txn().then(op.put(k, "v"));
    expect(() => (thenFirst as unknown as { if: (c: unknown) => void }).if(compare.value(k, "=", "v"))).toThrow(InvalidArgumentError);
    expect(() => etcd.client.txn().then().then()).toThrow(/txn.then\(\) was called after itself/);
    expect(() => etcd.client.txn().else().then()).toThrow(InvalidArgumentError);
    expect(() => compare.value(k, "==" as never, "v")).toThrow(/compare operator must be one of =, !=, <, >/);
    expect(() => compare.version(k, "=", 0.5)).toThrow(/compare version must be a bigint or a safe integer/);
    expect(() => etcd.client.txn().if({ key: k } as never)).toThrow(/txn if\[0\] must be a condition built with compare/);
    expect(() => etcd.client.txn().then({ put: k } as never)).toThrow(/txn then\[0\] must be an operation built with op/);
    expect(() => op.get(k, { prefix: true, fromKey: true })).toThrow(InvalidArgumentError);
    expect((await etcd.client.kv.get(k)).count).toBe(0n);
  });
});
