import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Client, UnsupportedVersionError } from "../../src/index.js";
import { EtcdCluster } from "../harness/cluster.js";
import { etcdVersion } from "../harness/etcd-binary.js";
import { cacheWatchingLate, callCounter, collect, fill, uniquePrefix } from "../helpers.js";

// Debian's etcd-server package is etcd 3.4 (.ci/run installs it); ETCD_34_BIN can point elsewhere.
const old = process.env.ETCD_34_BIN ?? (existsSync("/usr/bin/etcd") ? "/usr/bin/etcd" : undefined);

describe.skipIf(!old)("against an etcd older than 3.7", () => {
  const start = async () => {
    const version = await etcdVersion(old!);
    expect(version).toMatch(/^3\.4\./);
    return EtcdCluster.start({ binary: old!, noFsync: false });
  };

  it("iterates a range with pages of Range when RangeStream is missing", async () => {
    await using cluster = await start();
    const counter = callCounter();
    await using client = new Client({ endpoints: cluster.endpoints, middleware: { inner: [counter.middleware] } });
    const p = uniquePrefix();
    await fill(client, p, 250);
    const keys: string[] = [];
    for await (const kv of client.kv.iterate(p, { prefix: true, pageSize: 100 })) {
      // Later pages read at the first page's revision: a write made meanwhile is not seen.
      if (keys.length === 0) await client.kv.put(`${p}99999`, "late");
      keys.push(kv.keyString);
    }
    expect(keys).toEqual(Array.from({ length: 250 }, (_, i) => `${p}${String(i).padStart(5, "0")}`));
    expect(counter.calls.RangeStream).toBe(1);
    expect(counter.calls.Range).toBe(3);
    expect(await collect(client.kv.iterate(p, { prefix: true, pageSize: 100, limit: 150 }))).toHaveLength(150);
    expect(counter.calls.Range).toBe(3 + 2);
  });

  it("names the etcd version a newer method needs", async () => {
    await using cluster = await start();
    await using client = new Client({ endpoints: cluster.endpoints });
    const downgrade = await client.maintenance.downgrade("validate", "3.3").catch((e: unknown) => e);
    expect(downgrade).toBeInstanceOf(UnsupportedVersionError);
    expect((downgrade as UnsupportedVersionError).since).toBe("3.5");
    expect((downgrade as Error).message).toMatch(/Maintenance\/Downgrade needs etcd 3\.5 or newer/);
    const status = await client.auth.authStatus().catch((e: unknown) => e);
    expect(status).toBeInstanceOf(UnsupportedVersionError);
    // What 3.4 has works as usual.
    await client.kv.put(`${uniquePrefix()}k`, "v");
  });

  it("confirms a cache's consistent reads with reads, as 3.4 may answer a progress request ahead of its events", async () => {
    await using cluster = await start();
    await using client = new Client({ endpoints: cluster.endpoints });
    const watcher = client.watch(uniquePrefix());
    expect(await watcher.progressRequestsUsable()).toBe(false);
    watcher.cancel();
    const p = uniquePrefix();
    await using cache = await cacheWatchingLate(client, p, 500);
    const listed = await cache.list({ consistent: true });
    expect(listed.count).toBe(500);
    expect(listed.kvs.map((kv) => kv.keyString)).toEqual(await collect(client.kv.iterate(p, { prefix: true, revision: listed.revision })));
  });
});
