import { describe, expect, it } from "vitest";
import { Client } from "../../src/index.js";
import { useCluster, uniquePrefix } from "../helpers.js";

describe('the "etcd-sdk" entry', () => {
  const etcd = useCluster();

  it("talks gRPC over node:http2 by default, and over grpc-js or the gateway when asked", async () => {
    const key = `${uniquePrefix("entry")}k`;
    const endpoints = etcd.cluster.endpoints;
    await using byDefault = await Client.connect({ endpoints });
    expect(byDefault.toJSON().transport).toBe("http2");
    await byDefault.kv.put(key, "default");
    for (const transport of ["grpc", "gateway"] as const) {
      await using client = await Client.connect({ endpoints, transport });
      expect(client.toJSON().transport).toBe(transport);
      expect((await client.kv.get(key)).kvs[0]?.valueString).toBe("default");
    }
  });
});
