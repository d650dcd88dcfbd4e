import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../../../src/client/client.js";
import { EndpointError, EtcdError, MessageTooLargeError, TransportError } from "../../../src/core/errors.js";

/*
 * What a server that is not a well-behaved etcd gateway may send (a proxy, a broken or hostile
 * server), against a fake HTTP server on loopback: every answer must end the call with a typed
 * error, never an uncaught exception, never a redirect followed, and never more buffered than the
 * receive limit allows. etcd's own answers are tested against etcd (test/integration).
 */

type Handler = (request: http.IncomingMessage, response: http.ServerResponse, body: string) => void;

const MiB = 1024 * 1024;

async function listen(handler: () => Handler): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.url === "/version") return void response.end(JSON.stringify({ etcdserver: "3.7.1", etcdcluster: "3.7.0" }));
      handler()(request, response, Buffer.concat(chunks).toString());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Writes `chunk` until the client goes away (or `times` chunks), minding backpressure. */
function flood(response: http.ServerResponse, chunk: Buffer, times = Infinity): void {
  let sent = 0;
  const more = () => {
    while (sent < times && !response.destroyed) {
      sent++;
      if (!response.write(chunk)) return void response.once("drain", more);
    }
    if (sent >= times) response.end();
  };
  response.on("close", () => (sent = times));
  more();
}

describe("the gateway wire against a hostile server", () => {
  let handler: Handler;
  let target: { server: http.Server; url: string };
  let elsewhere: { server: http.Server; url: string };
  let elsewhereHits = 0;
  let client: Client;

  beforeAll(async () => {
    target = await listen(() => handler);
    elsewhere = await listen(() => (_request, response) => {
      elsewhereHits++;
      response.end("{}");
    });
  });
  afterEach(() => client?.close());
  afterAll(async () => {
    for (const { server } of [target, elsewhere]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const connect = (maxCallRecvMsgSize?: number) =>
    (client = new Client({ endpoints: [target.url], transport: "gateway", retry: { maxRetries: 0 }, dialTimeoutMs: 300, ...(maxCallRecvMsgSize ? { maxCallRecvMsgSize } : {}) }));

  const failureOf = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error("the call succeeded");
      },
      (err: unknown) => err,
    );

  it.each([301, 302, 307, 308])("never follows a %i redirect, so no request (and no password) goes where it points", async (status) => {
    elsewhereHits = 0;
    handler = (_request, response) => response.writeHead(status, { location: `${elsewhere.url}/v3/auth/authenticate` }).end();
    const err = await failureOf(connect().kv.get("k"));
    expect(err).toBeInstanceOf(EndpointError);
    expect((err as Error).message).toMatch(/redirect/);
    expect(elsewhereHits).toBe(0);
  });

  it.each([
    ["a body that is not JSON", "<html>hello</html>"],
    ["JSON that is not an object", "[1,2]"],
    ["null", "null"],
    ["an int64 that is not a number", JSON.stringify({ header: { revision: "twelve" } })],
    ["a key that is not base64 text", JSON.stringify({ kvs: [{ key: 5 }] })],
  ])("fails %s with a typed error", async (_what, body) => {
    handler = (_request, response) => response.end(body);
    const err = await failureOf(connect().kv.get("k"));
    expect(err).toBeInstanceOf(EtcdError);
  });

  it.each([
    ["a code that is not a gRPC code", JSON.stringify({ code: "nine", message: "x" })],
    ["a message that is not text", JSON.stringify({ code: 9, message: { nested: true } })],
    ["a page", "<html>bad gateway</html>"],
  ])("fails an error answer with %s as a typed error", async (_what, body) => {
    handler = (_request, response) => response.writeHead(500).end(body);
    const err = await failureOf(connect().kv.get("k"));
    expect(err).toBeInstanceOf(TransportError);
  });

  it.each([
    ["a line that is not JSON", "not json\n"],
    ["a line that is not an object", "42\n"],
    ["an error that is not an object", JSON.stringify({ error: 5 }) + "\n"],
    ["a result that is not the message", JSON.stringify({ result: { blob: { key: [] } } }) + "\n"],
  ])("fails a stream that sends %s with a typed error", async (_what, body) => {
    handler = (_request, response) => response.end(body);
    const err = await failureOf(
      (async () => {
        for await (const chunk of connect().maintenance.snapshot()) void chunk;
      })(),
    );
    expect(err).toBeInstanceOf(EtcdError);
  });

  it("stops reading a body at the receive limit: a 256 MiB answer to a 1 MiB client costs it no more than a few MiB", async () => {
    handler = (_request, response) => flood(response, Buffer.alloc(MiB, 0x20), 256);
    const before = process.memoryUsage();
    const err = await failureOf(connect(MiB).kv.get("k"));
    const after = process.memoryUsage();
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(32 * MiB);
    expect(after.rss - before.rss).toBeLessThan(96 * MiB);
  });

  it("cuts an endless line at the receive limit, in time linear in what it read", async () => {
    handler = (_request, response) => flood(response, Buffer.alloc(64 * 1024, 0x61));
    const started = performance.now();
    const before = process.memoryUsage();
    const err = await failureOf(
      (async () => {
        for await (const chunk of connect(4 * MiB).maintenance.snapshot()) void chunk;
      })(),
    );
    const after = process.memoryUsage();
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(after.rss - before.rss).toBeLessThan(96 * MiB);
    // Reading 4 MiB takes milliseconds when each byte is looked at once; quadratic splitting took minutes at 128 MiB.
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
