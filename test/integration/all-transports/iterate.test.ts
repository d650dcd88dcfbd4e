import { describe, expect, it } from "vitest";
import { callCounter, clientFor, collect, etcdAtLeast, fill, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

describe("iterate", () => {
  it("iterates a large range in key order at one revision (RangeStream on etcd 3.7)", async () => {
    const counter = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { inner: [counter.middleware] } });
    const p = uniquePrefix();
    await fill(client, p, 2500);
    const expected = Array.from({ length: 2500 }, (_, i) => `${p}${String(i).padStart(5, "0")}`);
    counter.calls.RangeStream = 0;
    const keys: string[] = [];
    for await (const kv of client.kv.iterate(p, { prefix: true })) {
      // A write during the iteration is after its revision: it is not seen.
      if (keys.length === 0) await client.kv.put(`${p}99999`, "late");
      keys.push(kv.keyString);
    }
    expect(keys).toEqual(expected);
    // One stream on 3.7; before it, one refused stream and pages of Range.
    expect(counter.calls.RangeStream).toBe(1);
    if (!etcdAtLeast("3.7")) expect(counter.calls.Range).toBe(3);
    expect(await collect(client.kv.iterate(p, { prefix: true, limit: 1200 }))).toEqual(expected.slice(0, 1200));
  });
});
