import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CallOptions, type ClientMiddleware, type ClientMiddlewareCall, Metadata } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvHistory, KvInput, KvOutput, RecordedOperation } from "./history.js";
import { checkSerializable, checkWritesOnce } from "./history-checks.js";
import { checkLeaseKept, checkLeaseTimely, type LeaseRecord } from "./lease-checks.js";
import { checkLinearizable } from "./linearizability.js";
import { plantMiddleware } from "./plants.js";
import {
  checkAtomic,
  checkOrdered,
  checkProgress,
  checkReliable,
  checkResumable,
  checkUnique,
  type RecordedEvent,
  type RecordedWatchResponse,
  type WatchRecord,
} from "./watch-checks.js";

/*
 * The checks on doctored records: each must pass what etcd and a correct client would produce,
 * and fail the bugs the robustness rounds exist to catch (a write resent after it was sent, a
 * watch resumed one revision late, a keep-alive that stays on a member without a leader).
 */

/** An operation from `call` to `ret` ms (-1: outcome unknown), made by porcupine client `client`. */
function op(client: number, call: number, ret: number, input: KvInput, output: KvOutput | null): RecordedOperation {
  return { client, call: call * 1e6, return: ret < 0 ? -1 : ret * 1e6, input, output, sdkClient: 0 };
}

const history = (operations: RecordedOperation[]): KvHistory => ({ initialRevision: "10", operations, annotations: [{ start: 0, end: 5e7, description: "a fault" }] });

describe("the linearizability checker (porcupine, etcd's KV model)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "robustness-checker-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes a history etcd could have produced, with concurrent calls and a txn", async () => {
    const verdict = await checkLinearizable(
      history([
        op(0, 0, 10, { op: "put", key: "k0", value: "a" }, { revision: "11" }),
        op(1, 5, 15, { op: "get", key: "k0" }, { revision: "10" }),
        op(1, 20, 30, { op: "txn", key: "k0", expectModRevision: "11", value: "b" }, { revision: "12", succeeded: true }),
        op(0, 25, 35, { op: "txn", key: "k0", expectModRevision: "11", value: "c" }, { revision: "12", succeeded: false, found: true, value: "b", modRevision: "12" }),
        op(0, 40, 50, { op: "delete", key: "k0" }, { revision: "13", deleted: "1" }),
        op(1, 40, 50, { op: "delete", key: "k1" }, { revision: "13", deleted: "0" }),
      ]),
      join(dir, "ok"),
    );
    expect(verdict).toMatchObject({ result: "Ok", checked: 6 });
    expect(existsSync(join(dir, "ok.html"))).toBe(false);
  });

  it("lets a write of unknown outcome take effect or not, and leaves stale serializable reads to their own check", async () => {
    const lost = op(0, 0, -1, { op: "put", key: "k0", value: "lost" }, null);
    const stale = op(2, 60, 70, { op: "get", key: "k0", serializable: true }, { revision: "10" });
    const applied = history([lost, op(1, 50, 60, { op: "get", key: "k0" }, { revision: "11", found: true, value: "lost", modRevision: "11" }), stale]);
    const notApplied = history([lost, op(1, 50, 60, { op: "get", key: "k0" }, { revision: "10" }), stale]);
    expect((await checkLinearizable(applied, join(dir, "applied"))).result).toBe("Ok");
    expect(await checkLinearizable(notApplied, join(dir, "not-applied"))).toMatchObject({ result: "Ok", checked: 2, unknownOutcomes: 1 });
  });

  it("catches a write resent after it was sent, and draws the history", async () => {
    // put(a) was applied at 11, answered, and applied again at 13, after put(b): a read sees it
    // return, which one put of a cannot explain.
    const verdict = await checkLinearizable(
      history([
        op(0, 0, 10, { op: "put", key: "k0", value: "a" }, { revision: "13" }),
        op(1, 2, 8, { op: "get", key: "k0" }, { revision: "11", found: true, value: "a", modRevision: "11" }),
        op(1, 9, 9.5, { op: "put", key: "k0", value: "b" }, { revision: "12" }),
        op(1, 20, 30, { op: "get", key: "k0" }, { revision: "13", found: true, value: "a", modRevision: "13" }),
      ]),
      join(dir, "resent"),
    );
    expect(verdict.result).toBe("Illegal");
    expect(verdict.visualization).toBe(join(dir, "resent.html"));
    expect(await readFile(verdict.visualization!, "utf8")).toContain("put(k0, a)");
  });

  it("catches a stale linearizable read", async () => {
    const verdict = await checkLinearizable(
      history([op(0, 0, 10, { op: "put", key: "k0", value: "a" }, { revision: "11" }), op(1, 20, 30, { op: "get", key: "k0" }, { revision: "10" })]),
      join(dir, "stale"),
    );
    expect(verdict.result).toBe("Illegal");
  });
});

describe("the history checks against etcd's own account", () => {
  const truth: RecordedEvent[] = [
    { type: "put", key: "k0", value: "a", modRevision: 11n },
    { type: "put", key: "k0", value: "b", modRevision: 12n },
    { type: "put", key: "k0", value: "a", modRevision: 13n },
  ];

  it("writes-once catches a value written twice, and a write reported at another revision", () => {
    const h = history([op(0, 0, 10, { op: "put", key: "k0", value: "a" }, { revision: "13" }), op(1, 9, 9.5, { op: "put", key: "k0", value: "b" }, { revision: "12" })]);
    expect(checkWritesOnce(h, truth)).toMatchObject({ status: "fail", detail: "value a was written 2 times, at revisions 11, 13" });
    expect(checkWritesOnce(h, truth.slice(1, 2))).toMatchObject({ status: "fail", detail: expect.stringContaining("put of a reported revision 13") });
    expect(checkWritesOnce(history([op(0, 0, 10, { op: "put", key: "k0", value: "b" }, { revision: "12" })]), truth.slice(1, 2)).status).toBe("pass");
  });

  it("serializable reads may be stale but must show a state etcd had", () => {
    const read = (output: KvOutput) => history([op(0, 0, 10, { op: "get", key: "k0", serializable: true }, output)]);
    expect(checkSerializable(read({ revision: "11", found: true, value: "a", modRevision: "11" }), truth, 13n).status).toBe("pass");
    expect(checkSerializable(read({ revision: "12", found: true, value: "a", modRevision: "11" }), truth, 13n).status).toBe("fail");
    expect(checkSerializable(read({ revision: "14" }), truth, 13n).status).toBe("fail");
  });
});

describe("the watch checks", () => {
  const truth: RecordedEvent[] = [11n, 12n, 13n, 14n].map((r) => ({ type: "put", key: `k${r % 2n}`, value: `v${r}`, modRevision: r }));
  const response = (at: number, revisions: bigint[], revision = revisions.at(-1) ?? 0n): RecordedWatchResponse => ({
    at,
    revision,
    progress: revisions.length === 0,
    events: revisions.map((r) => truth.find((e) => e.modRevision === r)!),
  });
  const record = (responses: RecordedWatchResponse[], resumes: number[] = []): WatchRecord => ({ name: "w", startRevision: 11n, responses, resumes });
  const all = (r: WatchRecord) => ({
    ordered: checkOrdered(r).status,
    unique: checkUnique(r).status,
    atomic: checkAtomic(r, truth).status,
    reliable: checkReliable(r, truth, 14n).status,
    resumable: checkResumable(r, truth).status,
    progress: checkProgress(r, truth, 14n).status,
  });

  it("pass a watcher that saw everything once, in order, through a resume", () => {
    const ok = record([response(1, [11n, 12n]), response(2, [], 12n), response(5, [13n]), response(6, [14n]), response(7, [], 14n)], [4]);
    expect(all(ok)).toEqual({ ordered: "pass", unique: "pass", atomic: "pass", reliable: "pass", resumable: "pass", progress: "pass" });
  });

  it("catch a watch resumed one revision late", () => {
    const late = record([response(1, [11n, 12n]), response(5, [14n]), response(7, [], 14n)], [4]);
    const results = all(late);
    expect(results).toMatchObject({ reliable: "fail", resumable: "fail", progress: "fail" });
    expect(checkResumable(late, truth).detail).toBe("w: resumed at 4 ms after put k0=v12@12 with put k0=v14@14; etcd's next is put k1=v13@13");
  });

  it("catch events repeated, out of order, split across responses, and progress ahead of them", () => {
    expect(checkUnique(record([response(1, [11n, 12n]), response(5, [12n, 13n])])).status).toBe("fail");
    expect(checkOrdered(record([response(1, [12n]), response(2, [11n])])).status).toBe("fail");
    // A txn that wrote two keys at revision 11: its two events belong in one response.
    const txn: RecordedEvent[] = [truth[0]!, { type: "put", key: "k9", value: "t", modRevision: 11n }];
    const at = (ms: number, events: RecordedEvent[]): RecordedWatchResponse => ({ at: ms, revision: 11n, progress: false, events });
    expect(checkAtomic(record([at(1, txn)]), txn).status).toBe("pass");
    expect(checkAtomic(record([at(1, [txn[0]!]), at(2, [txn[1]!])]), txn)).toMatchObject({ status: "fail", detail: "w: response 0 has 1 of the 2 events of revision 11" });
    expect(checkProgress(record([response(1, [11n]), response(2, [], 12n)]), truth, 14n).status).toBe("fail");
    expect(checkProgress(record([response(1, [11n]), response(2, [], 15n)]), truth, 14n).status).toBe("fail");
    expect(checkReliable(record([response(1, [11n, 12n])]), truth, 14n)).toMatchObject({ status: "fail", detail: expect.stringContaining("2 events up to revision 14 never came") });
  });
});

describe("the lease checks", () => {
  /** Renewals every 1.7 s of a TTL 5 s lease until `stopAt` ms. */
  const lease = (stopAt: number, more: Partial<LeaseRecord> = {}): LeaseRecord => ({
    ttlMs: 5000,
    renewals: Array.from({ length: Math.floor(stopAt / 1700) + 1 }, (_, i) => ({ sentAt: i * 1700, answeredAt: i * 1700 + 5 })),
    streams: [0],
    streamFailures: [],
    serverSamples: [],
    endedAt: 12_000,
    fault: { start: 1000, end: 9000 },
    ...more,
  });

  it("pass a lease renewed throughout", () => {
    expect(checkLeaseTimely(lease(12_000)).status).toBe("pass");
    expect(checkLeaseKept(lease(12_000)).status).toBe("pass");
  });

  it("catch a keep-alive left on a member without a leader: renewals stop, the lease is lost though a quorum is reachable", () => {
    // What a keep-alive stream without hasleader does on a partitioned member: it stays open,
    // etcd renews nothing, and the lease runs out at its deadline.
    const served = { at: 1500, answeredAt: 1505, ttl: 4 };
    const stuck = lease(1000, { lost: { at: 5000, reason: "deadline" }, serverSamples: [served, { at: 5500, answeredAt: 5505, ttl: -1 }] });
    expect(checkLeaseTimely(stuck).status).toBe("pass");
    expect(checkLeaseKept(stuck)).toMatchObject({ status: "fail", detail: expect.stringMatching(/^reported lost \(deadline\) at 5000 ms, fault 1000 ms-9000 ms; last confirmed renewal sent at 0 ms/) });
  });

  it("leave a loss unjudged only when the cluster answered no lease request until too close to the deadline to renew", () => {
    const lostWith = (servedAt: number) => lease(1000, { lost: { at: 5000, reason: "deadline" }, serverSamples: [{ at: servedAt - 100, answeredAt: servedAt, ttl: 5 }] });
    // A leader elected 4.5 s into the fault: no client renews a lease due at 5 s in 500 ms for sure.
    expect(checkLeaseKept(lostWith(4500))).toMatchObject({ status: "n/a", detail: expect.stringMatching(/no lease request from the fault's start \(1000 ms\) until 4500 ms/) });
    // One elected at 3.5 s left time enough: the client is to blame.
    expect(checkLeaseKept(lostWith(3500)).status).toBe("fail");
    // An answer asked before the fault says nothing about the cluster during it.
    expect(checkLeaseKept(lease(1000, { lost: { at: 5000, reason: "deadline" }, serverSamples: [{ at: 900, answeredAt: 4800, ttl: 5 }] })).status).toBe("fail");
  });

  it("catch a loss reported late, a lease held past its deadline, and one the cluster no longer has", () => {
    expect(checkLeaseTimely(lease(1000, { lost: { at: 7000, reason: "deadline" } })).status).toBe("fail");
    expect(checkLeaseTimely(lease(1000)).detail).toMatch(/due to count as lost at 5000 ms; still held at 12000 ms/);
    const resumedLate = lease(12_000);
    resumedLate.renewals = resumedLate.renewals.filter((r) => r.sentAt < 1000 || r.sentAt > 7000);
    expect(checkLeaseTimely(resumedLate).detail).toMatch(/no renewal confirmed from 5 ms until 8505 ms, past the deadline 5000 ms/);
    expect(checkLeaseTimely(lease(12_000, { serverSamples: [{ at: 3000, answeredAt: 3005, ttl: -1 }] })).status).toBe("fail");
    expect(checkLeaseKept(lease(1000, { lost: { at: 2000, reason: "deadline" } })).detail).toMatch(/before its deadline 5000 ms/);
  });
});

describe("the planted bugs", () => {
  /** Runs `middleware` on a fake call to `path`; returns what reached the wire. */
  async function through(middleware: ClientMiddleware, path: string, request: unknown, options: CallOptions = {}): Promise<{ sent: unknown[]; options: CallOptions[] }> {
    const sent: unknown[] = [];
    const seen: CallOptions[] = [];
    const requestStream = typeof request === "object" && request !== null && Symbol.asyncIterator in request;
    const call = {
      method: { path, requestStream, responseStream: requestStream, options: {} },
      requestStream,
      responseStream: requestStream,
      request,
      next: async function* (req: unknown, opts: CallOptions) {
        seen.push(opts);
        if (requestStream) for await (const r of req as AsyncIterable<unknown>) sent.push(r);
        else sent.push(req);
        return {};
      },
    } as unknown as ClientMiddlewareCall<unknown, unknown>;
    const run = middleware(call, options) as AsyncGenerator<unknown, unknown>;
    for (let r = await run.next(); !r.done; r = await run.next());
    return { sent, options: seen };
  }
  async function* stream<T>(...items: T[]): AsyncGenerator<T> {
    yield* items;
  }
  const create = (watchId: number, startRevision: bigint) => ({ requestUnion: { $case: "createRequest", createRequest: { watchId, startRevision } } });

  it("resend-write sends some puts twice, and nothing else", async () => {
    let twice = 0;
    for (let i = 0; i < 200; i++) if ((await through(plantMiddleware("resend-write"), "/etcdserverpb.KV/Put", { key: "k" })).sent.length === 2) twice++;
    expect(twice).toBeGreaterThan(0);
    expect((await through(plantMiddleware("resend-write"), "/etcdserverpb.KV/Range", { key: "k" })).sent).toHaveLength(1);
  });

  it("watch-late resumes a watcher created again one revision late, and leaves its first creation alone", async () => {
    const plant = plantMiddleware("watch-late");
    expect((await through(plant, "/etcdserverpb.Watch/Watch", stream(create(1, 11n)))).sent).toEqual([create(1, 11n)]);
    expect((await through(plant, "/etcdserverpb.Watch/Watch", stream(create(1, 20n), create(2, 5n)))).sent).toEqual([create(1, 21n), create(2, 5n)]);
  });

  it("keepalive-no-hasleader drops hasleader from keep-alive streams only", async () => {
    const plant = plantMiddleware("keepalive-no-hasleader");
    const options = { metadata: Metadata({ hasleader: "true" }) };
    const keepAlive = await through(plant, "/etcdserverpb.Lease/LeaseKeepAlive", stream({ ID: 1n }), options);
    expect(keepAlive.options[0]!.metadata?.get("hasleader")).toBeUndefined();
    const watch = await through(plant, "/etcdserverpb.Watch/Watch", stream(create(1, 1n)), options);
    expect(watch.options[0]!.metadata?.get("hasleader")).toBe("true");
  });
});
