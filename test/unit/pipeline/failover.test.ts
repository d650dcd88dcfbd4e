import { type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { KVDefinition, WatchDefinition } from "../../../gen/etcdserverpb/rpc.js";
import { EndpointError } from "../../../src/core/errors.js";
import { type Delivery, type SizeLimit, WireFailure } from "../../../src/core/wire-failure.js";
import { wireMethods } from "../../../src/pipeline/chain.js";
import { failoverMiddleware, mayTryElsewhere } from "../../../src/pipeline/failover.js";
import type { EndpointSet } from "../../../src/wire/endpoints.js";
import { deliveryOfGrpcStatus, type GrpcFailure } from "../../../src/wire/grpc/grpc-js-status.js";
import type { WireMethod } from "../../../src/wire/wire.js";

/*
 * Which failed attempts the failover step sends to the next endpoint, even for a write: those its
 * wire reports as never having reached etcd. A member shutting down refuses a stream only in a
 * race no test can time; test/integration covers dead and frozen members.
 */

/** Two always-connected endpoints; the first is pinned until it fails. */
function endpoints(): EndpointSet & { failed: Set<string> } {
  const failed = new Set<string>();
  const all = ["a:2379", "b:2379"];
  return {
    failed,
    endpoints: all,
    get current() {
      return all.find((e) => !failed.has(e)) ?? all[0]!;
    },
    setEndpoints() {},
    pick: (exclude) => all.find((e) => !exclude.has(e) && !failed.has(e)) ?? all.find((e) => !exclude.has(e)),
    markFailed: (e) => void failed.add(e),
    markHealthy: (e) => void failed.delete(e),
    suspect: (e) => void failed.add(e),
    isReady: () => true,
    connect: () => Promise.resolve("ready"),
    connectFailure: () => Promise.resolve(undefined),
    close: () => Promise.resolve(),
  };
}

const put = wireMethods(KVDefinition).put!;
const watch = wireMethods(WatchDefinition).watch!;

const failure = (method: WireMethod, code: Status, delivery: Delivery, sizeLimit?: SizeLimit) => new WireFailure(method.path, code, "scripted", delivery, { sizeLimit });

/** A call through the failover step whose first attempt fails with `first`; where each attempt went. */
async function callFailingFirstWith(method: WireMethod, first: unknown) {
  const pool = endpoints();
  const sentTo: string[] = [];
  const failover = failoverMiddleware({
    pool,
    dialTimeoutMs: 1000,
    send: (endpoint) => {
      sentTo.push(endpoint);
      if (method.requestStream) {
        return (async function* () {
          if (sentTo.length === 1) throw first;
          yield "event";
        })();
      }
      return sentTo.length === 1 ? Promise.reject(first) : Promise.resolve("done");
    },
  });
  const call = { method, requestStream: method.requestStream, responseStream: method.responseStream, request: {}, next: undefined as never };
  const calls = failover(call as ClientMiddlewareCall<unknown, unknown>, {});
  const outcome = await calls.next().then(
    (step) => step.value,
    (err: unknown) => err,
  );
  return { outcome, sentTo, failed: [...pool.failed] };
}

describe("the failover decision", () => {
  it.each<[Delivery, SizeLimit | undefined, boolean, boolean]>([
    ["never-sent", undefined, false, true],
    ["refused-unread", undefined, false, true],
    ["sent-and-lost", undefined, false, false],
    ["answered", undefined, false, false],
    // Over the send limit anywhere, so never worth another endpoint.
    ["never-sent", "send", false, false],
    ["answered", "receive", false, false],
    // A request stream's owner starts it anew instead.
    ["never-sent", undefined, true, false],
    ["refused-unread", undefined, true, false],
  ])("for %s (limit %s, request stream %s): may try elsewhere = %s", (delivery, limit, requestStream, expected) => {
    expect(mayTryElsewhere(new WireFailure("/p", Status.UNAVAILABLE, "x", delivery, { sizeLimit: limit }), requestStream)).toBe(expected);
  });

  it("never sends elsewhere an error no wire described", () => {
    expect(mayTryElsewhere(new Error("a middleware's own"), false)).toBe(false);
  });
});

describe("failover step", () => {
  it.each<[string, Status, Delivery]>([
    ["a connection that was never established", Status.UNAVAILABLE, "never-sent"],
    ["a stream the server refused unread", Status.UNAVAILABLE, "refused-unread"],
    ["a stream that could not be started", Status.INTERNAL, "never-sent"],
  ])("resends a write after %s to the next endpoint", async (_what, code, delivery) => {
    const { outcome, sentTo } = await callFailingFirstWith(put, failure(put, code, delivery));
    expect(outcome).toBe("done");
    expect(sentTo).toEqual(["a:2379", "b:2379"]);
  });

  it("never resends a write that may have reached etcd, and passes over the member that lost it", async () => {
    const lost = failure(put, Status.UNAVAILABLE, "sent-and-lost");
    const { outcome, sentTo, failed } = await callFailingFirstWith(put, lost);
    expect(outcome).toBe(lost);
    expect(sentTo).toEqual(["a:2379"]);
    expect(failed).toEqual(["a:2379"]);
  });

  it("gives an answered failure back as it is, and keeps the member unless it cannot serve", async () => {
    const refused = failure(put, Status.INVALID_ARGUMENT, "answered");
    const { outcome, sentTo, failed } = await callFailingFirstWith(put, refused);
    expect(outcome).toBe(refused);
    expect(sentTo).toEqual(["a:2379"]);
    expect(failed).toEqual([]);
  });

  it("never resends a request over the send limit", async () => {
    const tooLarge = failure(put, Status.RESOURCE_EXHAUSTED, "never-sent", "send");
    const { outcome, sentTo } = await callFailingFirstWith(put, tooLarge);
    expect(outcome).toBe(tooLarge);
    expect(sentTo).toEqual(["a:2379"]);
  });

  it("leaves a failed request stream to its owner, even one never sent", async () => {
    const neverSent = failure(watch, Status.UNAVAILABLE, "never-sent");
    const { outcome, sentTo, failed } = await callFailingFirstWith(watch, neverSent);
    expect(outcome).toBe(neverSent);
    expect(sentTo).toEqual(["a:2379"]);
    expect(failed).toEqual(["a:2379"]);
  });
});

describe("failover step for a request stream", () => {
  /** Endpoints where `down` ones fail to connect (refused at once). */
  function withDown(down: string[]): EndpointSet {
    const pool = endpoints();
    return { ...pool, isReady: (e) => !down.includes(e), connect: (e) => Promise.resolve(down.includes(e) ? "failed" : "ready") };
  }

  const openWatch = async (pool: EndpointSet, dialTimeoutMs: number) => {
    const sentTo: string[] = [];
    const failover = failoverMiddleware({
      pool,
      dialTimeoutMs,
      send: (endpoint) => {
        sentTo.push(endpoint);
        return (async function* () {
          yield "event";
        })();
      },
    });
    const call = { method: watch, requestStream: true, responseStream: true, request: {}, next: undefined as never };
    const outcome = await failover(call as ClientMiddlewareCall<unknown, unknown>, {})
      .next()
      .then(
        (step) => step.value,
        (err: unknown) => err,
      );
    return { outcome, sentTo };
  };

  it("opens on an endpoint that connects, never handing its requests to one that refused the connection", async () => {
    const { outcome, sentTo } = await openWatch(withDown(["a:2379"]), 1000);
    expect(outcome).toBe("event");
    expect(sentTo).toEqual(["b:2379"]);
  });

  it("fails with an EndpointError saying none was reachable once every endpoint refused until the dial timeout", async () => {
    const started = Date.now();
    const { outcome, sentTo } = await openWatch(withDown(["a:2379", "b:2379"]), 250);
    expect(outcome).toBeInstanceOf(EndpointError);
    expect(outcome).toMatchObject({ noneReachable: true, code: Status.UNAVAILABLE });
    expect(sentTo).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe("grpc-js's wording, read in the grpc wire alone", () => {
  it.each<[string, Status, string, GrpcFailure]>([
    ["no connection", Status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1", { delivery: "never-sent", tls: false }],
    ["no connection (round robin)", Status.UNAVAILABLE, "round_robin: No connection established", { delivery: "never-sent", tls: false }],
    ["an unknown CA", Status.UNAVAILABLE, "No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ", { delivery: "never-sent", tls: true }],
    ["a name mismatch", Status.UNAVAILABLE, "No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames", { delivery: "never-sent", tls: true }],
    ["a refused client certificate", Status.UNAVAILABLE, "No connection established. Last error: 80:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required", { delivery: "never-sent", tls: true }],
    ["a refused stream", Status.UNAVAILABLE, "Stream refused by server", { delivery: "refused-unread" }],
    ["a stream not started", Status.INTERNAL, "Failed to start HTTP/2 stream with error: The session has been destroyed", { delivery: "never-sent" }],
    ["a dropped connection", Status.UNAVAILABLE, "Connection dropped", { delivery: "sent-and-lost" }],
    ["a reset stream", Status.INTERNAL, "Received RST_STREAM with code 2", { delivery: "sent-and-lost" }],
    ["the send limit", Status.RESOURCE_EXHAUSTED, "Attempted to send message with a size larger than 10", { delivery: "never-sent", sizeLimit: "send" }],
    ["the receive limit", Status.RESOURCE_EXHAUSTED, "Received message larger than max (20 vs. 10)", { delivery: "answered", sizeLimit: "receive" }],
    ["etcd's own quota error", Status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded", { delivery: "answered" }],
    ["an etcd error", Status.INVALID_ARGUMENT, "etcdserver: key is not provided", { delivery: "answered" }],
  ])("reads %s", (_what, code, details, expected) => {
    expect(deliveryOfGrpcStatus(code, details)).toEqual(expected);
  });
});
