import { ClientError, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import type { EndpointSet } from "../../src/endpoint-rotation.js";
import { failoverMiddleware } from "../../middleware/failover.js";

/*
 * Which failures the failover middleware resends to the next endpoint even for a write: those
 * that provably never reached etcd. grpc-js reports a refused or unstartable stream only in a
 * race with a member shutting down, which no test can time; failover.test.ts under
 * test/integration covers dead and frozen members.
 */

/** Two always-connected endpoints; the first is pinned until it fails. */
function endpoints(): EndpointSet {
  const failed = new Set<string>();
  const all = ["a:2379", "b:2379"];
  return {
    endpoints: all,
    get current() {
      return all.find((e) => !failed.has(e)) ?? all[0]!;
    },
    setEndpoints() {},
    pick: (exclude) => all.find((e) => !exclude.has(e) && !failed.has(e)) ?? all.find((e) => !exclude.has(e)),
    markFailed: (e) => void failed.add(e),
    markHealthy: (e) => void failed.delete(e),
    isReady: () => true,
    connect: () => Promise.resolve("ready"),
    close() {},
  };
}

const put = { path: "/etcdserverpb.KV/Put", requestStream: false, responseStream: false, options: {} };

/** A put through the failover middleware whose first attempt fails with `first`; where each attempt went. */
async function putFailingFirstWith(first: ClientError) {
  const sentTo: string[] = [];
  const failover = failoverMiddleware({
    pool: endpoints(),
    dialTimeoutMs: 1000,
    dispatch: (endpoint) => {
      sentTo.push(endpoint);
      return sentTo.length === 1 ? Promise.reject(first) : Promise.resolve("put");
    },
  });
  const calls = failover({ method: put, requestStream: false, responseStream: false, request: {}, next: undefined as never } as ClientMiddlewareCall<unknown, unknown>, {});
  const outcome = await calls.next().then(
    (step) => step.value,
    (err: unknown) => err,
  );
  return { outcome, sentTo };
}

describe("failover middleware", () => {
  it.each([
    ["a connection that was never established", Status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED"],
    ["a stream the server refused unread", Status.UNAVAILABLE, "Stream refused by server"],
    ["a stream that could not be started", Status.INTERNAL, "Failed to start HTTP/2 stream with error: The session has been destroyed"],
  ])("resends a write after %s to the next endpoint", async (_what, code, details) => {
    const { outcome, sentTo } = await putFailingFirstWith(new ClientError(put.path, code, details));
    expect(outcome).toBe("put");
    expect(sentTo).toEqual(["a:2379", "b:2379"]);
  });

  it("never resends a write that may have reached etcd", async () => {
    const lost = new ClientError(put.path, Status.UNAVAILABLE, "Connection dropped");
    const { outcome, sentTo } = await putFailingFirstWith(lost);
    expect(outcome).toBe(lost);
    expect(sentTo).toEqual(["a:2379"]);
  });
});
