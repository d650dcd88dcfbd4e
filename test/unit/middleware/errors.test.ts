import { Status } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import {
  CallCanceledError,
  DeadlineExceededError,
  EndpointError,
  ErrCompacted,
  ErrEmptyKey,
  ErrNoSpace,
  ErrTimeout,
  EtcdServerError,
  MessageTooLargeError,
  TransportError,
  UnsupportedVersionError,
} from "../../../src/core/errors.js";
import { type Delivery, type SizeLimit, WireFailure } from "../../../src/core/wire-failure.js";
import { Status as ExportedStatus } from "../../../src/exports.js";
import { ScriptedClient } from "../support/scripted-wire.js";

/*
 * What a caller gets for each way a call can fail, with the whole chain between the wire and the
 * caller (error mapping outermost, retries and failover below): the typed error, its fields, and
 * the endpoint it names. Retries are off so that each script's first failure is the outcome.
 */

const RANGE = "/etcdserverpb.KV/Range";
const PUT = "/etcdserverpb.KV/Put";

let client: ScriptedClient | undefined;
afterEach(() => client?.close());

/** A client whose every put (or range) fails as scripted. */
function failing(path: string, code: Status, details: string, delivery: Delivery, sizeLimit?: SizeLimit): ScriptedClient {
  client = new ScriptedClient({ endpoints: ["a:2379"], retry: { maxRetries: 0 }, dialTimeoutMs: 50 });
  client.wire.on(path, () => {
    throw new WireFailure(path, code, details, delivery, { sizeLimit });
  });
  return client;
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("the call succeeded");
    },
    (err: unknown) => err,
  );

describe("error mapping", () => {
  it("gives etcd's own errors their rpctypes class, code, message and endpoint", async () => {
    const err = await rejection(failing(PUT, Status.INVALID_ARGUMENT, "etcdserver: key is not provided", "answered").kv.put("k", "v"));
    expect(err).toBeInstanceOf(ErrEmptyKey);
    // The codes are the SDK's own export: no other package is needed to compare them.
    expect((err as EtcdServerError).code).toBe(ExportedStatus.INVALID_ARGUMENT);
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT, serverMessage: "etcdserver: key is not provided", endpoint: "a:2379", outcome: "not-applied" });
  });

  it("says which of etcd's errors leave a write's fate unknown: its timeouts, cancels and leader changes", async () => {
    const timedOut = await rejection(failing(PUT, Status.UNAVAILABLE, "etcdserver: request timed out", "answered").kv.put("k", "v"));
    expect(timedOut).toBeInstanceOf(ErrTimeout);
    expect(timedOut).toMatchObject({ outcome: "unknown" });
    client?.close();
    const unknown = await rejection(failing(PUT, Status.UNKNOWN, "etcdserver: something new", "answered").kv.put("k", "v"));
    expect(unknown).toMatchObject({ outcome: "unknown" });
    client?.close();
    const noLeader = await rejection(failing(PUT, Status.UNAVAILABLE, "etcdserver: no leader", "answered").kv.put("k", "v"));
    expect(noLeader).toMatchObject({ outcome: "not-applied" });
  });

  it("keeps an etcd message it has no class for as an EtcdServerError", async () => {
    const err = await rejection(failing(RANGE, Status.UNKNOWN, "etcdserver: something new", "answered").kv.get("k"));
    expect(err).toBeInstanceOf(EtcdServerError);
    expect(err).toMatchObject({ serverMessage: "etcdserver: something new", code: Status.UNKNOWN });
  });

  it("tells etcd's quota error (RESOURCE_EXHAUSTED) from the client's size limits", async () => {
    expect(await rejection(failing(PUT, Status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded", "answered").kv.put("k", "v"))).toBeInstanceOf(ErrNoSpace);
    client?.close();
    const send = await rejection(failing(PUT, Status.RESOURCE_EXHAUSTED, "over", "never-sent", "send").kv.put("k", "v"));
    expect(send).toBeInstanceOf(MessageTooLargeError);
    expect(send).toMatchObject({ outcome: "not-applied" });
    expect((send as Error).message).toMatch(/send limit \(maxCallSendMsgSize\)/);
    client?.close();
    const receive = await rejection(failing(RANGE, Status.RESOURCE_EXHAUSTED, "over", "answered", "receive").kv.get("k"));
    expect(receive).toBeInstanceOf(MessageTooLargeError);
    expect((receive as Error).message).toMatch(/receive limit \(maxCallRecvMsgSize\)/);
  });

  it("reads etcd's own receive limit from the server's status message", async () => {
    const err = await rejection(failing(PUT, Status.RESOURCE_EXHAUSTED, "grpc: received message larger than max (3000000 vs. 2097152)", "answered").kv.put("k", "v"));
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/server's receive limit/);
  });

  it("says a write that may have reached etcd has an unknown outcome, and one never sent does not", async () => {
    const lost = await rejection(failing(PUT, Status.UNAVAILABLE, "connection dropped", "sent-and-lost").kv.put("k", "v"));
    expect(lost).toBeInstanceOf(EndpointError);
    expect((lost as Error).message).toMatch(/outcome unknown/);
    expect(lost).toMatchObject({ code: Status.UNAVAILABLE, endpoint: "a:2379", outcome: "unknown", noneReachable: false });
    client?.close();
    // Never sent, on the only endpoint: failover keeps trying until the dial timeout, then gives up.
    const unreachable = await rejection(failing(PUT, Status.UNAVAILABLE, "no connection", "never-sent").kv.put("k", "v"));
    expect(unreachable).toBeInstanceOf(EndpointError);
    expect((unreachable as Error).message).toMatch(/no etcd server reachable at a:2379 within 50 ms/);
    expect((unreachable as Error).message).not.toMatch(/outcome unknown/);
    expect(unreachable).toMatchObject({ outcome: "not-applied", noneReachable: true });
  });

  it("gives any other transport failure as a TransportError with its code", async () => {
    const err = await rejection(failing(RANGE, Status.INTERNAL, "could not decode the server's response", "answered").kv.get("k"));
    expect(err).toBeInstanceOf(TransportError);
    expect(err).not.toBeInstanceOf(EndpointError);
    expect(err).toMatchObject({ code: Status.INTERNAL });
  });

  it("names the etcd version a method needs when the server does not have it", async () => {
    client = new ScriptedClient({ endpoints: ["a:2379"], retry: { maxRetries: 0 } });
    const path = "/etcdserverpb.Maintenance/Downgrade";
    client.wire.on(path, () => {
      throw new WireFailure(path, Status.UNIMPLEMENTED, "unknown method Downgrade", "answered");
    });
    const err = await rejection(client.maintenance.downgrade("validate", "3.5"));
    expect(err).toBeInstanceOf(UnsupportedVersionError);
    expect((err as Error).message).toMatch(/3\.5/);
  });

  it("tells the caller's own abort and deadline apart from etcd's failures", async () => {
    client = new ScriptedClient({ endpoints: ["a:2379"] });
    const answers: (() => void)[] = [];
    client.wire.on(RANGE, () => new Promise<object>((resolve) => answers.push(() => resolve({}))));
    const controller = new AbortController();
    const aborted = rejection(client.kv.get("k", { signal: controller.signal }));
    controller.abort();
    expect(await aborted).toBeInstanceOf(CallCanceledError);
    expect(await aborted).toMatchObject({ outcome: "unknown" });
    const late = await rejection(client.kv.get("k", { deadline: 20 }));
    expect(late).toBeInstanceOf(DeadlineExceededError);
    expect(late).toMatchObject({ outcome: "unknown" });
    // A deadline that had passed before the call: nothing was sent.
    expect(await rejection(client.kv.get("k", { deadline: new Date(0) }))).toMatchObject({ outcome: "not-applied" });
    for (const answer of answers) answer();
  });

  it("passes a compacted revision through as ErrCompacted with etcd's code", async () => {
    const err = await rejection(failing(RANGE, Status.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted", "answered").kv.get("k", { revision: 1 }));
    expect(err).toBeInstanceOf(ErrCompacted);
    expect(err).toMatchObject({ code: Status.OUT_OF_RANGE });
  });
});
