import { type ClientMiddleware, Metadata } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { ErrEmptyKey } from "../../../src/index.js";
import { clientFor, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

/** A middleware that logs "<name> before/after <method>" around each call it sees. */
function tracer(name: string, log: string[]): ClientMiddleware {
  return async function* (call, options) {
    const method = call.method.path.split("/").pop();
    log.push(`${name} before ${method}`);
    try {
      return yield* call.next(call.request, options);
    } finally {
      log.push(`${name} after ${method}`);
    }
  } as ClientMiddleware;
}

describe("custom middleware", () => {
  it("runs outer middleware first and inner middleware closest to the wire, in the order given", async () => {
    const log: string[] = [];
    await using client = clientFor(etcd.cluster, {
      middleware: { outer: [tracer("outer1", log), tracer("outer2", log)], inner: [tracer("inner1", log), tracer("inner2", log)] },
    });
    await client.kv.put(`${uniquePrefix()}k`, "v");
    expect(log).toEqual([
      "outer1 before Put",
      "outer2 before Put",
      "inner1 before Put",
      "inner2 before Put",
      "inner2 after Put",
      "inner1 after Put",
      "outer2 after Put",
      "outer1 after Put",
    ]);
  });

  it("sees nice-grpc errors, which the caller then gets typed, and can add metadata", async () => {
    const seen: string[] = [];
    const tagging: ClientMiddleware = async function* (call, options) {
      try {
        return yield* call.next(call.request, { ...options, metadata: Metadata(options.metadata).set("x-request-id", "42") });
      } catch (err) {
        seen.push(`${(err as { code?: number }).code}: ${(err as { details?: string }).details}`);
        throw err;
      }
    } as ClientMiddleware;
    await using client = clientFor(etcd.cluster, { middleware: { outer: [tagging] } });
    await expect(client.kv.put("", "v")).rejects.toBeInstanceOf(ErrEmptyKey);
    expect(seen).toEqual(["3: etcdserver: key is not provided"]);
  });

  it("keeps a move to the next endpoint within one attempt, below the inner middleware", async () => {
    const attempts: string[] = [];
    await using client = clientFor(etcd.cluster, {
      endpoints: ["127.0.0.1:2", ...etcd.cluster.endpoints],
      dialTimeoutMs: 2000,
      middleware: { inner: [tracer("attempt", attempts)] },
    });
    expect((await client.kv.get(`${uniquePrefix()}k`)).count).toBe(0n);
    expect(attempts.filter((a) => a.startsWith("attempt before"))).toHaveLength(1);
  });

  it("rejects middleware that is not a function", () => {
    expect(() => clientFor(etcd.cluster, { middleware: { outer: [42 as never] } })).toThrow(
      /middleware.outer must be an array of nice-grpc client middleware functions/,
    );
  });
});
