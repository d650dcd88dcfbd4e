import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { createServer } from "node:http";
import http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Client,
  ClientClosedError,
  EndpointError,
  ErrRequestTooLarge,
  InvalidArgumentError,
  MessageTooLargeError,
} from "../../../src/index.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { clientFor, configFor, overGateway, startCluster, uniquePrefix } from "../../helpers.js";

let cluster: EtcdCluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.close();
});

/** Sockets and timers the process holds, by kind: a closed client must leave none of its own. */
function clientHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) {
    if (r === "TCPSocketWrap" || r === "TCPWrap" || r === "Timeout") counts[r] = (counts[r] ?? 0) + 1;
  }
  return counts;
}

/** Waits until the handle counts are back to `before` (grpc-js closes on later event-loop turns). */
async function settledTo(before: Record<string, number>): Promise<Record<string, number>> {
  for (let i = 0; i < 100; i++) {
    const now = clientHandles();
    if (Object.keys(now).every((k) => (now[k] ?? 0) <= (before[k] ?? 0))) return now;
    await new Promise((r) => setTimeout(r, 20));
  }
  return clientHandles();
}

describe("config", () => {
  it("rejects malformed configs with errors naming the field", () => {
    const bad: [unknown, RegExp][] = [
      [{ endpoints: [] }, /endpoints must be a non-empty array/],
      [{ endpoints: "127.0.0.1:2379" }, /endpoints must be a non-empty array/],
      [{ endpoints: ["http://[::1"] }, /endpoints contains a malformed endpoint/],
      [{ endpoints: ["ftp://127.0.0.1:2379"] }, /must use http:\/\/, https:\/\/, unix:\/\/ or unixs:\/\//],
      [{ endpoints: ["http://127.0.0.1:2379/v3"] }, /must be only a scheme, host and port/],
      [{ endpoints: ["http://a:1", "https://b:2"] }, /must all use TLS or all not use it/],
      [{ endpoints: [""] }, /endpoints must contain non-empty strings/],
      [{ endpoints: ["127.0.0.1:2379"], dialTimeoutMs: -5 }, /dialTimeoutMs must be a positive integer/],
      [{ endpoints: ["127.0.0.1:2379"], maxCallSendMsgSize: 1.5 }, /maxCallSendMsgSize must be a positive integer/],
    ];
    for (const [config, message] of bad) {
      expect(() => new Client(config as never)).toThrow(InvalidArgumentError);
      expect(() => new Client(config as never)).toThrow(message);
    }
  });

  it("accepts URLs and bare host:port", async () => {
    const port = cluster.members[0]!.endpoint.split(":")[1];
    for (const endpoint of [`http://127.0.0.1:${port}`, `127.0.0.1:${port}`, `localhost:${port}`]) {
      await using client = await Client.connect(configFor(cluster, { endpoints: [endpoint] }));
      expect((await client.kv.get("x")).count).toBe(0n);
    }
  });
});

describe("connect", () => {
  it("fails within the dial timeout when nothing listens", async () => {
    const started = Date.now();
    const err = await Client.connect(configFor(cluster, { endpoints: ["127.0.0.1:2"], dialTimeoutMs: 500 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointError);
    expect((err as EndpointError).endpoint).toBe("127.0.0.1:2");
    expect((err as Error).message).toMatch(/could not connect to etcd at 127.0.0.1:2/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("waits for a member that starts listening after it, as long as the dial timeout allows", async () => {
    await using late = await startCluster();
    const [member] = late.members;
    await member!.kill();
    const restarted = sleep(700).then(() => member!.restart());
    const started = Date.now();
    await using client = await Client.connect(configFor(late, { dialTimeoutMs: 10_000 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    await restarted;
    const key = `${uniquePrefix()}k`;
    await client.kv.put(key, "v");
    expect((await client.kv.get(key)).kvs[0]?.valueString).toBe("v");
  });

  it.each([
    [
      "an HTTP/2 server",
      () => {
        const server = http2.createServer((_, res) => res.writeHead(404).end("not here"));
        return { server, close: () => new Promise<unknown>((resolve) => server.close(resolve)) };
      },
    ],
    [
      "a gRPC server without etcd's services",
      () => {
        const server = new GrpcServer();
        return { server, close: () => new Promise<unknown>((resolve) => server.tryShutdown(resolve)) };
      },
    ],
  ])("says what answered when %s is not etcd, on connect and on a call", async (_what, make) => {
    const { server, close } = make();
    const port =
      server instanceof GrpcServer
        ? await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))))
        : await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
    try {
      const config = configFor(cluster, { endpoints: [`127.0.0.1:${port}`], dialTimeoutMs: 1000 });
      const started = Date.now();
      const refused = await Client.connect(config).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(EndpointError);
      // The gateway speaks HTTP/1.1, which an HTTP/2-only server does not answer: unreachable to it.
      if (!overGateway()) expect((refused as Error).message).toMatch(/is not an etcd server/);
      expect(Date.now() - started).toBeLessThan(3000);
      await using client = new Client(config);
      const failed = await client.kv.put("k", "v").catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(EndpointError);
      if (!overGateway()) expect((failed as Error).message).toMatch(/is not an etcd server/);
    } finally {
      await close();
    }
  });

  it("reports an endpoint that is not etcd as an EndpointError on a call", async () => {
    const server = createServer((_, res) => res.end("not etcd"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const client = clientFor(cluster, { endpoints: [`127.0.0.1:${port}`], dialTimeoutMs: 1000 });
    try {
      const started = Date.now();
      const err = await client.kv.get("k", { deadline: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EndpointError);
      expect((err as Error).message).toMatch(/no etcd server reachable at 127.0.0.1:\d+ within 1000 ms: .*(Protocol error|is not an etcd gateway)/);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      client.close();
      server.close();
    }
  });
});

describe("close", () => {
  it("leaves no sockets or timers behind and refuses later calls", async () => {
    const before = clientHandles();
    const client = await Client.connect(configFor(cluster));
    await client.kv.put(`${uniquePrefix()}k`, "v");
    await client.txn().commit();
    const closing = client.close();
    // A promise, the same one each time, and one a caller may chain on.
    expect(client.close()).toBe(closing);
    await closing.catch(() => undefined);
    // Once it resolves, the connections are gone; fetch (the gateway) closes its pooled ones a moment later.
    const after = overGateway() ? await settledTo(before) : clientHandles();
    for (const kind of Object.keys(after)) expect(after[kind], kind).toBeLessThanOrEqual(before[kind] ?? 0);
    await expect(client.kv.get("k")).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => client.txn()).not.toThrow();
    await expect(client.txn().commit()).rejects.toBeInstanceOf(ClientClosedError);
  });

  it("closes at the end of an await using block", async () => {
    let escaped: Client | undefined;
    {
      await using client = clientFor(cluster);
      escaped = client;
      await client.kv.get("k");
    }
    await expect(escaped.kv.get("k")).rejects.toBeInstanceOf(ClientClosedError);
  });
});

describe("message size limits", () => {
  it("refuses to send more than the send limit (2 MiB by default) before anything reaches etcd", async () => {
    const p = uniquePrefix();
    await using client = clientFor(cluster);
    const err = await client.kv.put(`${p}big`, new Uint8Array(2 * 1024 * 1024 + 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/request of .*Put is over the send limit .*maxCallSendMsgSize/);

    await using strict = clientFor(cluster, { maxCallSendMsgSize: 1024 });
    await expect(strict.kv.put(`${p}small`, new Uint8Array(2048))).rejects.toBeInstanceOf(MessageTooLargeError);
    await client.kv.put(`${p}fits`, new Uint8Array(1024 * 1024));
    expect((await client.kv.get(p, { prefix: true, keysOnly: true })).kvs.map((kv) => kv.keyString)).toEqual([`${p}fits`]);
  });

  it("reports etcd's own request limits as typed errors when the client allows more", async () => {
    const p = uniquePrefix();
    await using roomy = clientFor(cluster, { maxCallSendMsgSize: 4 * 1024 * 1024 });
    // etcd takes at most 1.5 MiB per request (--max-request-bytes) and its gRPC server 2 MiB (2.5 MiB
    // of bytes is 3.3 MiB of base64 over the gateway: still under this client's limit).
    await expect(roomy.kv.put(`${p}k`, new Uint8Array(1.8 * 1024 * 1024))).rejects.toBeInstanceOf(ErrRequestTooLarge);
    const err = await roomy.kv.put(`${p}k`, new Uint8Array(2.5 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/request of .*Put is over the server's receive limit/);
    expect((await roomy.kv.get(`${p}k`)).count).toBe(0n);
  });

  it("refuses responses over a configured receive limit and stays usable", async () => {
    const p = uniquePrefix();
    await using client = clientFor(cluster, { maxCallRecvMsgSize: 1024 });
    await client.kv.put(`${p}big`, new Uint8Array(4096));
    const err = await client.kv.get(`${p}big`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/response of .*Range is over the receive limit .*maxCallRecvMsgSize/);
    expect((await client.kv.get(`${p}big`, { keysOnly: true })).count).toBe(1n);
  });
});
