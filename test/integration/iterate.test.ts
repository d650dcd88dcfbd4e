import { existsSync } from "node:fs";
import type { ClientMiddleware } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { Client, op } from "../../src/index.js";
import { EtcdCluster } from "../harness/cluster.js";
import { etcdVersion } from "../harness/etcd-binary.js";
import { uniquePrefix, useCluster } from "../helpers.js";

const etcd = useCluster();

/** Counts calls per method name, as seen on the wire. */
function callCounter(): { calls: Record<string, number>; middleware: ClientMiddleware } {
  const calls: Record<string, number> = {};
  const middleware = async function* (call, options) {
    const name = call.method.path.split("/").pop()!;
    calls[name] = (calls[name] ?? 0) + 1;
    return yield* call.next(call.request, options);
  } as ClientMiddleware;
  return { calls, middleware };
}

async function fill(client: Client, p: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    await client.txn().then(...Array.from({ length: Math.min(100, n - i) }, (_, j) => op.put(`${p}${String(i + j).padStart(5, "0")}`, "v"))).commit();
  }
}

async function collect(iterable: AsyncIterable<{ keyString: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const kv of iterable) keys.push(kv.keyString);
  return keys;
}

describe("iterate", () => {
  it("streams a large range in key order at one revision with RangeStream (etcd 3.7)", async () => {
    const counter = callCounter();
    await using client = new Client({ endpoints: etcd.cluster.endpoints, middleware: { inner: [counter.middleware] } });
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
    expect(counter.calls.RangeStream).toBe(1);
    expect(await collect(client.kv.iterate(p, { prefix: true, limit: 1200 }))).toEqual(expected.slice(0, 1200));
  });

  // Debian's etcd-server package is etcd 3.4; ETCD_34_BIN can point elsewhere.
  const old = process.env.ETCD_34_BIN ?? (existsSync("/usr/bin/etcd") ? "/usr/bin/etcd" : undefined);
  it.skipIf(!old)("falls back to pages of Range on a server older than 3.7", async () => {
    const version = await etcdVersion(old!);
    expect(version).toMatch(/^3\.[4-6]\./);
    await using cluster = await EtcdCluster.start({ binary: old!, noFsync: !version.startsWith("3.4.") });
    const counter = callCounter();
    await using client = new Client({ endpoints: cluster.endpoints, middleware: { inner: [counter.middleware] } });
    const p = uniquePrefix();
    await fill(client, p, 250);
    const keys = await collect(client.kv.iterate(p, { prefix: true, pageSize: 100 }));
    expect(keys).toEqual(Array.from({ length: 250 }, (_, i) => `${p}${String(i).padStart(5, "0")}`));
    expect(counter.calls.RangeStream).toBe(1);
    expect(counter.calls.Range).toBe(3);
    expect(await collect(client.kv.iterate(p, { prefix: true, pageSize: 100, limit: 150 }))).toHaveLength(150);
  });
});
