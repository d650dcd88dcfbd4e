/**
 * The in-memory etcd's failures against etcd 3.7.1's recorded contract: each error etcd returns
 * is provoked as etcd would be, and what comes off the wire (gRPC code and message) must be what
 * the contract says etcd sends, and what the SDK makes of it etcd's typed error.
 */
import { readFileSync } from "node:fs";
import { ClientError, type ClientMiddleware, Status } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import * as errors from "../../../src/core/errors.js";
import { MemoryEtcd, type MemoryClient, op } from "../../../src/testing.js";
import { contractPath } from "../../proto/contract-fixture.js";

interface ContractError {
  name: string;
  grpcCode: string;
  message: string;
}

const contract = JSON.parse(readFileSync(contractPath, "utf8")) as { errors: { list: ContractError[] } };

/** What etcd sends for the error `name`, as its status code's name and message. */
function etcdSends(name: string): { code: string; details: string } {
  const error = contract.errors.list.find((e) => e.name === name);
  if (!error) throw new Error(`the contract has no error ${name}`);
  // "InvalidArgument" → "INVALID_ARGUMENT"; grpc-go spells CANCELLED with one L.
  const code = error.grpcCode.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase().replace(/^CANCELED$/, "CANCELLED");
  return { code, details: error.message };
}

/** Each failure that comes off the wire, as code name and message, seen below every other middleware. */
function wireFailures(): { seen: { code: string; details: string }[]; middleware: ClientMiddleware } {
  const seen: { code: string; details: string }[] = [];
  const middleware = async function* (call, options) {
    try {
      return yield* call.next(call.request, options);
    } catch (err) {
      if (err instanceof ClientError) seen.push({ code: Status[err.code], details: err.details });
      throw err;
    }
  } as ClientMiddleware;
  return { seen, middleware };
}

/** A middleware that changes the request before it is sent, as a client of another SDK could send it. */
function rewriting(change: (request: Record<string, unknown>) => void): ClientMiddleware {
  return async function* (call, options) {
    change(call.request as Record<string, unknown>);
    return yield* call.next(call.request, options);
  } as ClientMiddleware;
}

let etcd: MemoryEtcd | undefined;
afterEach(async () => {
  await etcd?.close();
  etcd = undefined;
});

function clientOf(options: ConstructorParameters<typeof MemoryEtcd>[0] = {}, inner: ClientMiddleware[] = []): { client: MemoryClient; seen: { code: string; details: string }[] } {
  etcd = new MemoryEtcd(options);
  const failures = wireFailures();
  return { client: etcd.client({ middleware: { inner: [...inner, failures.middleware] } }), seen: failures.seen };
}

/** Each error, and how a client provokes it from etcd. */
const provoked: [string, (client: MemoryClient) => Promise<unknown>][] = [
  ["ErrEmptyKey", (c) => c.kv.put("", "v")],
  ["ErrKeyNotFound", (c) => c.kv.put("missing", "", { ignoreValue: true })],
  ["ErrValueProvided", (c) => c.kv.put("k", "v", { ignoreValue: true })],
  ["ErrLeaseProvided", (c) => c.kv.put("k", "v", { lease: 1, ignoreLease: true })],
  ["ErrTooManyOps", (c) => c.txn().then(...Array.from({ length: 129 }, (_, i) => op.put(`k${i}`, "v"))).commit()],
  ["ErrDuplicateKey", (c) => c.txn().then(op.put("k", "1"), op.delete("j", { end: "l" })).commit()],
  ["ErrFutureRev", (c) => c.kv.get("k", { revision: 100 })],
  ["ErrLeaseNotFound", (c) => c.kv.put("k", "v", { lease: 12345 })],
  ["ErrLeaseTTLTooLarge", (c) => c.lease.grant(9_000_000_001)],
  [
    "ErrLeaseExist",
    async (c) => {
      await c.lease.grant(10, { id: 7 });
      return c.lease.grant(10, { id: 7 });
    },
  ],
  [
    "ErrCompacted",
    async (c) => {
      const { header } = await c.kv.put("k", "1");
      await c.kv.put("k", "2");
      await c.kv.compact(header.revision + 1n);
      return c.kv.get("k", { revision: header.revision });
    },
  ],
];

describe("the in-memory etcd's errors", () => {
  it.each(provoked)("%s: etcd's code and message on the wire, and etcd's typed error", async (name, provoke) => {
    const { client, seen } = clientOf();
    const err = await provoke(client).catch((e: unknown) => e);
    expect(seen.at(-1)).toEqual(etcdSends(name));
    expect(err).toBeInstanceOf((errors as unknown as Record<string, errors.ServerErrorClass>)[name]);
    expect((err as errors.EtcdServerError).endpoint).toBe(etcd!.endpoint);
  });

  it("ErrInvalidSortOption for a sort order etcd does not know", async () => {
    const { client, seen } = clientOf({}, [rewriting((request) => (request.sortOrder = 7))]);
    await expect(client.kv.get("k")).rejects.toBeInstanceOf(errors.ErrInvalidSortOption);
    expect(seen.at(-1)).toEqual(etcdSends("ErrInvalidSortOption"));
  });

  it("ErrRequestTooLarge for a write over maxRequestBytes (etcd's --max-request-bytes); reads are not held to it", async () => {
    const { client, seen } = clientOf({ maxRequestBytes: 1024 });
    await expect(client.kv.put("k", "x".repeat(2000))).rejects.toBeInstanceOf(errors.ErrRequestTooLarge);
    expect(seen.at(-1)).toEqual(etcdSends("ErrRequestTooLarge"));
    expect((await client.kv.get("x".repeat(2000))).count).toBe(0n);
  });

  it("ErrKeyNotFound for a transaction operation that holds no request, as etcd answers it", async () => {
    const { client, seen } = clientOf();
    const empty = { kind: "get", pb: { request: undefined } } as unknown as ReturnType<typeof op.get>;
    await expect(client.txn().then(empty).commit()).rejects.toBeInstanceOf(errors.ErrKeyNotFound);
    expect(seen.at(-1)).toEqual(etcdSends("ErrKeyNotFound"));
  });

  it("ErrCompacted and ErrFutureRev on compaction itself, and for a range in a transaction", async () => {
    const { client, seen } = clientOf();
    await client.kv.put("k", "1");
    const { header } = await client.kv.put("k", "2");
    await client.kv.compact(header.revision);
    await expect(client.kv.compact(header.revision)).rejects.toBeInstanceOf(errors.ErrCompacted);
    expect(seen.at(-1)).toEqual(etcdSends("ErrCompacted"));
    await expect(client.kv.compact(header.revision + 10n)).rejects.toBeInstanceOf(errors.ErrFutureRev);
    expect(seen.at(-1)).toEqual(etcdSends("ErrFutureRev"));
    await expect(client.txn().then(op.get("k", { revision: header.revision - 1n })).commit()).rejects.toBeInstanceOf(errors.ErrCompacted);
    expect(seen.at(-1)).toEqual(etcdSends("ErrCompacted"));
  });

  it("answers a lease it does not know as etcd does: revoke fails, time-to-live says -1, keep-alive says TTL 0", async () => {
    const { client, seen } = clientOf();
    await expect(client.lease.revoke(404)).rejects.toBeInstanceOf(errors.ErrLeaseNotFound);
    expect(seen.at(-1)).toEqual(etcdSends("ErrLeaseNotFound"));
    expect((await client.lease.timeToLive(404)).ttl).toBe(-1n);
    await expect(client.lease.keepAliveOnce(404)).rejects.toBeInstanceOf(errors.ErrLeaseNotFound);
  });

  it("refuses a watch of an empty range, with etcd's cancel reason", async () => {
    const { client } = clientOf();
    const err = await client.watch("b", { end: "a" }).ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(errors.EtcdServerError);
    expect((err as errors.EtcdServerError).serverMessage).toBe("mvcc: watcher range is empty");
  });
});
