/**
 * The in-memory etcd's MVCC store through the client: revisions as etcd counts them, and
 * compaction, which drops the history before its revision for good.
 */
import { afterEach, describe, expect, it } from "vitest";
import { compare, ErrCompacted, ErrFutureRev, MemoryEtcd, type MemoryClient, op, WatchCompactedError, type WatchResponse } from "../../../src/testing.js";

let etcd: MemoryEtcd | undefined;
afterEach(async () => {
  await etcd?.close();
  etcd = undefined;
});

function client(): MemoryClient {
  etcd = new MemoryEtcd();
  return etcd.client();
}

async function firstResponse(watcher: AsyncIterator<WatchResponse>): Promise<string[]> {
  const { value } = (await watcher.next()) as IteratorYieldResult<WatchResponse>;
  return value.events.map((e) => `${e.type} ${e.kv.keyString}@${e.kv.modRevision}`);
}

describe("revisions", () => {
  it("start at 1, and count one per write that changes something, whatever it changes", async () => {
    const c = client();
    expect((await c.kv.get("k")).header.revision).toBe(1n);
    expect((await c.kv.put("a", "1")).header.revision).toBe(2n);
    const txn = await c.txn().then(op.put("b", "1"), op.put("c", "1"), op.delete("a")).commit();
    expect(txn.header.revision).toBe(3n);
    // Deleting nothing, an empty txn and a read-only txn write nothing.
    expect((await c.kv.delete("nothing")).header.revision).toBe(3n);
    expect((await c.txn().commit()).header.revision).toBe(3n);
    expect((await c.txn().then(op.get("b")).commit()).header.revision).toBe(3n);
    const b = (await c.kv.get("b")).kvs[0]!;
    expect([b.createRevision, b.modRevision, b.version]).toEqual([3n, 3n, 1n]);
  });

  it("give a key its create revision and version anew after a delete", async () => {
    const c = client();
    await c.kv.put("k", "1");
    await c.kv.put("k", "2");
    await c.kv.delete("k");
    const { header } = await c.kv.put("k", "3");
    const kv = (await c.kv.get("k")).kvs[0]!;
    expect([kv.createRevision, kv.modRevision, kv.version]).toEqual([header.revision, header.revision, 1n]);
    expect((await c.kv.get("k", { revision: 3n })).kvs[0]?.version).toBe(2n);
    expect((await c.kv.get("k", { revision: 4n })).count).toBe(0n);
  });

  it("evaluate every compare of a transaction, nested ones too, before it writes anything", async () => {
    const c = client();
    const res = await c
      .txn()
      .then(op.put("k", "1"), op.txn({ if: [compare.version("k", "=", 0)], then: [op.put("seen-before", "yes")], else: [op.put("seen-after", "yes")] }))
      .commit();
    expect(res.succeeded).toBe(true);
    expect((await c.kv.get("seen-before")).count).toBe(1n);
  });
});

describe("compaction", () => {
  it("keeps reads at and after its revision, and fails older ones and future ones", async () => {
    const c = client();
    const revisions: bigint[] = [];
    for (const value of ["1", "2", "3"]) revisions.push((await c.kv.put("k", value)).header.revision);
    const [r1, r2, r3] = revisions as [bigint, bigint, bigint];
    await c.kv.compact(r2);
    await expect(c.kv.get("k", { revision: r1 })).rejects.toBeInstanceOf(ErrCompacted);
    expect((await c.kv.get("k", { revision: r2 })).kvs[0]?.valueString).toBe("2");
    expect((await c.kv.get("k", { revision: r3 })).kvs[0]?.valueString).toBe("3");
    await expect(c.kv.get("k", { revision: r3 + 1n })).rejects.toBeInstanceOf(ErrFutureRev);
  });

  it("drops the history for good: a watcher from before it is cancelled with its revision, one from it sees what it kept", async () => {
    const c = client();
    await c.kv.put("gone", "1"); // 2
    await c.kv.delete("gone"); // 3: a delete before the compaction, whose key is dropped whole
    await c.kv.put("k", "1"); // 4
    await c.kv.delete("k"); // 5: a delete at the compaction's revision, which it keeps
    await c.kv.put("later", "1"); // 6
    await c.kv.compact(5);
    const err = await firstResponse(c.watch("", { prefix: true, startRevision: 4 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect((err as WatchCompactedError).compactRevision).toBe(5n);
    expect(await firstResponse(c.watch("", { prefix: true, startRevision: 5 }))).toEqual(["delete k@5", "put later@6"]);
  });

  it("leaves every revision from its own on to transactions and watchers alike", async () => {
    const c = client();
    for (let i = 0; i < 5; i++) await c.kv.put(`k${i}`, String(i));
    const { header } = await c.kv.get("k0");
    await c.kv.compact(header.revision - 1n);
    const res = await c.txn().then(op.get("k", { prefix: true, revision: header.revision - 1n, countOnly: true })).commit();
    if (!res.succeeded) throw new Error("an empty if holds");
    expect(res.results[0].count).toBe(4n);
    expect(await firstResponse(c.watch("k4", { startRevision: header.revision - 1n }))).toEqual([`put k4@${header.revision}`]);
  });
});
