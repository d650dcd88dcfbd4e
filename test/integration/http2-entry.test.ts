/**
 * The "etcd-sdk/http2" entry: the same client without @grpc/grpc-js. Whether grpc-js gets loaded
 * is a property of a whole process, so the client runs in a Node process of its own.
 */
import { execFile } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, InvalidArgumentError } from "../../src/http2.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { startCluster, uniquePrefix } from "../helpers.js";

let cluster: EtcdCluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.close();
});

const entry = pathToFileURL(fileURLToPath(new URL("../../src/http2.ts", import.meta.url))).href;

describe('the "etcd-sdk/http2" entry', () => {
  it("puts, gets, watches and closes over node:http2 in a process that never loads grpc-js or nice-grpc", async () => {
    const key = `${uniquePrefix("h2entry")}k`;
    const script = `
      import { createRequire } from "node:module";
      import { Client } from ${JSON.stringify(entry)};
      const client = await Client.connect({ endpoints: ${JSON.stringify(cluster.endpoints)} });
      const watcher = client.watch(${JSON.stringify(key)});
      await watcher.ready;
      await client.kv.put(${JSON.stringify(key)}, "v1");
      const got = await client.kv.get(${JSON.stringify(key)});
      const { value } = await watcher.next();
      // Awaited as a script would: Node exits 13 if the promise never settles.
      await client.close();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => /[\\\\/](@grpc[\\\\/]grpc-js|nice-grpc)[\\\\/]/.test(path));
      console.log(JSON.stringify({ got: got.kvs[0]?.valueString, watched: value.events[0]?.kv.valueString, loaded }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
    expect(JSON.parse(stdout)).toEqual({ got: "v1", watched: "v1", loaded: [] });
  });

  it("refuses transport grpc and a missing config with InvalidArgumentErrors naming them, and takes the gateway", async () => {
    expect(() => new Client({ endpoints: cluster.endpoints, transport: "grpc" })).toThrow(InvalidArgumentError);
    expect(() => new Client({ endpoints: cluster.endpoints, transport: "grpc" })).toThrow('transport must be "http2" or "gateway" in the "etcd-sdk/http2" entry, got "grpc"');
    for (const config of [undefined, null, "127.0.0.1:2379"]) expect(() => new Client(config as never)).toThrow("config must be an object with endpoints");
    const client = await Client.connect({ endpoints: cluster.endpoints, transport: "gateway" });
    try {
      const key = `${uniquePrefix("h2entry")}gw`;
      await client.kv.put(key, "over the gateway");
      expect((await client.kv.get(key)).kvs[0]?.valueString).toBe("over the gateway");
    } finally {
      client.close();
    }
  });
});
