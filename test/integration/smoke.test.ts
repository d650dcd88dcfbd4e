import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrEmptyKey, EtcdServerError, type Client } from "../../src/index.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { clientFor, startCluster } from "../helpers.js";

let cluster: EtcdCluster;
let client: Client;
beforeAll(async () => {
  cluster = await startCluster();
  client = clientFor(cluster);
});
afterAll(async () => {
  client?.close();
  await cluster?.close();
});

describe("smoke", () => {
  it("puts and gets", async () => {
    await client.kv.put("smoke/a", "1");
    const res = await client.kv.get("smoke/a");
    expect(res.kvs[0]?.valueString).toBe("1");
  });
  it("rejects an empty key with ErrEmptyKey", async () => {
    const err = await client.kv.put("", "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErrEmptyKey);
    expect(err).toBeInstanceOf(EtcdServerError);
    expect((err as EtcdServerError).name).toBe("ErrEmptyKey");
    expect((err as EtcdServerError).endpoint).toBe(cluster.endpoints[0]);
  });
});
