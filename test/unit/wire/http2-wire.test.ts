import http2, { constants, type ServerHttp2Stream } from "node:http2";
import net, { type AddressInfo } from "node:net";
import { Status } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KVDefinition, PutResponse } from "../../../gen/etcdserverpb/rpc.js";
import { resolveConfig } from "../../../src/core/config.js";
import { SESSION_MEMORY_MB } from "../../../src/wire/http2/connection.js";
import { GrpcWire } from "../../../src/wire/grpc/wire.js";
import { Http2Wire } from "../../../src/wire/http2/wire.js";
import { wireMethods } from "../../../src/pipeline/chain.js";
import { WireFailure } from "../../../src/core/wire-failure.js";

// What etcd never sends but a proxy or a broken server may: the wire's reading of odd answers,
// against a fake HTTP/2 server. Everything etcd does send is tested against etcd itself (the
// "http2" project of vitest.config.ts runs the integration suites over this wire).
type Answer = (stream: ServerHttp2Stream) => void;

const PUT = wireMethods(KVDefinition).put!;
const response = Buffer.from(PutResponse.encode(PutResponse.fromPartial({ header: { revision: 42 } })).finish());
const framed = (message: Buffer, flag = 0) => Buffer.concat([Buffer.from([flag, ...[24, 16, 8, 0].map((s) => (message.length >>> s) & 255)]), message]);

/** Answers with status 200, writes `pieces` as DATA frames of their own, then the trailers. */
const grpcAnswer =
  (pieces: Buffer[], trailers: Record<string, string> = { "grpc-status": "0" }): Answer =>
  (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    const writeNext = (i: number): void => {
      if (i === pieces.length) return void stream.end();
      stream.write(pieces[i], () => setTimeout(() => writeNext(i + 1), 5));
    };
    writeNext(0);
  };

/** A fake HTTP/2 server on loopback that gives each stream the answer the test set last. */
async function fakeServer(): Promise<{ endpoint: string; answerWith(answer: Answer): void; close(): Promise<unknown> }> {
  let answer: Answer = (stream) => stream.close(constants.NGHTTP2_REFUSED_STREAM);
  const server = http2.createServer();
  server.on("stream", (stream) => {
    // A stream this side resets reports its own reset as an error.
    stream.on("error", () => undefined);
    stream.resume();
    answer(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    answerWith: (next) => (answer = next),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("Http2Wire reading answers etcd does not give", () => {
  let server: Awaited<ReturnType<typeof fakeServer>>;
  let wire: Http2Wire;
  let endpoint: string;

  beforeAll(async () => {
    server = await fakeServer();
    endpoint = server.endpoint;
    wire = new Http2Wire(resolveConfig({ endpoints: [endpoint], transport: "http2" }));
  });
  afterAll(async () => {
    await wire.close();
    await server.close();
  });

  const put = (with_: Answer): Promise<unknown> => {
    server.answerWith(with_);
    return wire.send(endpoint, PUT, { key: Buffer.from("k"), value: Buffer.from("v") }, {}) as Promise<unknown>;
  };
  const failure = async (with_: Answer): Promise<WireFailure> => {
    const err = await put(with_).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WireFailure);
    return err as WireFailure;
  };

  it("connects with a finite session memory cap, so that no server can make the session grow without bound", async () => {
    const connect = vi.spyOn(http2, "connect");
    try {
      const own = new Http2Wire(resolveConfig({ endpoints: [endpoint], transport: "http2" }));
      await own.endpoints.connect(endpoint, new Date(Date.now() + 2000));
      await own.close();
      const options = connect.mock.calls[0]?.[1] as { maxSessionMemory?: number } | undefined;
      expect(options?.maxSessionMemory).toBe(SESSION_MEMORY_MB);
      expect(SESSION_MEMORY_MB).toBeLessThanOrEqual(1024);
    } finally {
      connect.mockRestore();
    }
  });

  it("reads a message whose prefix and body arrive in pieces", async () => {
    const whole = framed(response);
    const answered = (await put(grpcAnswer([whole.subarray(0, 2), whole.subarray(2, 7), whole.subarray(7)]))) as PutResponse;
    expect(answered.header?.revision).toBe(42n);
  });

  it("fails a compressed message, which it never asked for, as Internal", async () => {
    const err = await failure(grpcAnswer([framed(response, 1)]));
    expect([err.code, err.details]).toEqual([Status.INTERNAL, expect.stringMatching(/compressed/)]);
  });

  it("fails an answer that ends in the middle of a message as Internal", async () => {
    const err = await failure(grpcAnswer([framed(response).subarray(0, 4)]));
    expect([err.code, err.details, err.delivery]).toEqual([Status.INTERNAL, "the response ended in the middle of a message", "answered"]);
  });

  it("reads the status of a trailers-only answer and percent-decodes its message", async () => {
    const err = await failure((stream) => stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "9", "grpc-message": "etcdserver%3A%20x%20y" }, { endStream: true }));
    expect([err.code, err.details, err.delivery]).toEqual([Status.FAILED_PRECONDITION, "etcdserver: x y", "answered"]);
  });

  it("keeps a grpc-message that is not valid percent-encoding as it came, instead of throwing in a listener", async () => {
    const err = await failure((stream) => stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "13", "grpc-message": "100%" }, { endStream: true }));
    expect([err.code, err.details]).toEqual([Status.INTERNAL, "100%"]);
  });

  it.each([
    ["a grpc-status that is not a number", { "grpc-status": "abc" }],
    ["a grpc-status outside gRPC's codes", { "grpc-status": "99" }],
    ["a grpc-status given twice", { "grpc-status": ["5", "6"] }],
  ])("reads %s as Unknown", async (_what, trailers) => {
    const err = await failure((stream) => stream.respond({ ":status": 200, "content-type": "application/grpc", ...trailers }, { endStream: true }));
    expect(err.code).toBe(Status.UNKNOWN);
  });

  it("fails a message that is not the response's protobuf as Internal", async () => {
    const err = await failure(grpcAnswer([framed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))]));
    expect([err.code, err.delivery]).toEqual([Status.INTERNAL, "answered"]);
  });

  it("maps an HTTP error without a gRPC status as the gRPC spec does", async () => {
    const err = await failure((stream) => stream.respond({ ":status": 400 }, { endStream: true }));
    expect([err.code, err.delivery]).toEqual([Status.INTERNAL, "answered"]);
    const unavailable = await failure((stream) => stream.respond({ ":status": 503 }, { endStream: true }));
    expect([unavailable.code, unavailable.delivery]).toEqual([Status.UNAVAILABLE, "answered"]);
  });

  it("reports a stream the server refused unread as such, which failover may send elsewhere", async () => {
    const err = await failure((stream) => stream.close(constants.NGHTTP2_REFUSED_STREAM));
    expect([err.code, err.delivery]).toEqual([Status.UNAVAILABLE, "refused-unread"]);
  });

  it("reports any other reset as sent and lost", async () => {
    const err = await failure((stream) => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    expect([err.code, err.delivery]).toEqual([Status.INTERNAL, "sent-and-lost"]);
  });
});

describe("both gRPC wires against a corpus of malformed answers", () => {
  let server: Awaited<ReturnType<typeof fakeServer>>;
  beforeAll(async () => {
    server = await fakeServer();
  });
  afterAll(() => server.close());

  const grpcHeaders = { ":status": 200, "content-type": "application/grpc" };
  const corpus: [string, Answer][] = [
    ["a grpc-message that is not percent-encoding", (s) => s.respond({ ...grpcHeaders, "grpc-status": "13", "grpc-message": "%E0%A4%A" }, { endStream: true })],
    ["a grpc-status that is not a number", (s) => s.respond({ ...grpcHeaders, "grpc-status": "thirteen" }, { endStream: true })],
    ["a grpc-status past gRPC's codes", (s) => s.respond({ ...grpcHeaders, "grpc-status": "4294967296" }, { endStream: true })],
    ["no content-type", (s) => s.respond({ ":status": 200, "grpc-status": "0" }, { endStream: true })],
    [
      "an HTML page",
      (s) => {
        s.respond({ ":status": 502, "content-type": "text/html" });
        s.end("<html>bad gateway</html>");
      },
    ],
    ["a body that is not gRPC framing", grpcAnswer([Buffer.from("not a grpc message at all")])],
    ["a message that is not protobuf", grpcAnswer([framed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))])],
    ["a length prefix past the data", grpcAnswer([Buffer.from([0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3])])],
    ["a compressed message never asked for", grpcAnswer([framed(response, 1)])],
    ["an OK status without a message", grpcAnswer([])],
    ["a reset stream", (s) => s.close(constants.NGHTTP2_PROTOCOL_ERROR)],
    ["a reset with an unknown code", (s) => s.close(0x99)],
  ];

  describe.each([
    ["grpc", (config: ReturnType<typeof resolveConfig>) => new GrpcWire(config)],
    ["http2", (config: ReturnType<typeof resolveConfig>) => new Http2Wire(config)],
  ] as const)("over %s", (transport, makeWire) => {
    it.each(corpus)("fails %s as a WireFailure, never throwing elsewhere", async (_what, malformed) => {
      const { endpoint } = server;
      const wire = makeWire(resolveConfig({ endpoints: [endpoint], transport }));
      try {
        server.answerWith(malformed);
        const outcome = await (wire.send(endpoint, PUT, { key: Buffer.from("k"), value: Buffer.from("v") }, {}) as Promise<unknown>).then(
          () => "answered",
          (e: unknown) => e,
        );
        expect(outcome).toBeInstanceOf(WireFailure);
      } finally {
        await wire.close();
      }
    });
  });
});

describe("closing the http2 wire", () => {
  it("resolves at once for a connection that never got the server's SETTINGS, as to a frozen member", async () => {
    // Accepts TCP and never answers: Node then emits no 'close' for the destroyed session.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const endpoint = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const wire = new Http2Wire(resolveConfig({ endpoints: [endpoint], transport: "http2" }));
    try {
      expect(await wire.endpoints.connect(endpoint, new Date(Date.now() + 200))).toBe("timeout");
      const started = Date.now();
      await wire.close();
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      silent.close();
    }
  });
});
