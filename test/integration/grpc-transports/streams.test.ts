import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { KVDefinition } from "../../../gen/etcdserverpb/rpc.js";
import { resolveConfig } from "../../../src/core/config.js";
import { CallCanceledError, ErrUserEmpty } from "../../../src/index.js";
import { GrpcWire } from "../../../src/wire/grpc/wire.js";
import { Http2Wire } from "../../../src/wire/http2/wire.js";
import { CallPipeline } from "../../../src/pipeline/call-pipeline.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { enableAuth, etcdAtLeast, startCluster } from "../../helpers.js";

// The public API has no streaming call yet (watch comes next), so this drives the transport's
// middleware chain directly with etcd 3.7's server-streaming RangeStream.
describe.skipIf(!etcdAtLeast("3.7"))("the middleware chain on a server stream (RangeStream, etcd 3.7)", () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startCluster(1, ["--auth-token=simple", "--auth-token-ttl=1"]);
    await enableAuth(cluster, "root-pw", "alice-pw");
    return () => cluster.close();
  });

  const transport = (config: { username?: string; password?: string } = {}) => {
    const resolved = resolveConfig({ endpoints: cluster.endpoints, ...config });
    return new CallPipeline(resolved, inject("transport") === "http2" ? new Http2Wire(resolved) : new GrpcWire(resolved));
  };
  const keys = async (stream: AsyncIterable<{ rangeResponse?: { kvs: { key: Uint8Array }[] } | undefined }>) => {
    const seen: string[] = [];
    for await (const part of stream) seen.push(...(part.rangeResponse?.kvs ?? []).map((kv) => Buffer.from(kv.key).toString()));
    return seen;
  };

  it("sends the token on streams, refreshes it when expired, and maps stream errors", async () => {
    const root = transport({ username: "root", password: "root-pw" });
    const anonymous = transport();
    try {
      const kv = root.service(KVDefinition);
      for (const k of ["s/a", "s/b", "s/c"]) await kv.put({ key: Buffer.from(k), value: Buffer.from("v") });
      const range = { key: Buffer.from("s/"), rangeEnd: Buffer.from("s0") };
      expect(await keys(kv.rangeStream(range))).toEqual(["s/a", "s/b", "s/c"]);
      // Past the 1 s token TTL: the stream gets a fresh token before anything was delivered.
      await sleep(2500);
      expect(await keys(kv.rangeStream(range))).toEqual(["s/a", "s/b", "s/c"]);

      await expect(keys(anonymous.service(KVDefinition).rangeStream(range))).rejects.toBeInstanceOf(ErrUserEmpty);

      const controller = new AbortController();
      controller.abort();
      await expect(keys(kv.rangeStream(range, { signal: controller.signal }))).rejects.toBeInstanceOf(CallCanceledError);
    } finally {
      root.close();
      anonymous.close();
    }
  });
});
