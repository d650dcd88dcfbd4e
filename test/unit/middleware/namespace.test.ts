import { afterEach, describe, expect, it } from "vitest";
import { Status } from "nice-grpc-common";
import type {
  DeepPartial,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from "../../../gen/etcdserverpb/rpc.js";
import { Event_EventType } from "../../../gen/mvccpb/kv.js";
import { compare, op } from "../../../src/api/txn.js";
import type { Keyspace } from "../../../src/api/keyspace.js";
import { ErrEmptyKey, InvalidArgumentError } from "../../../src/core/errors.js";
import { ScriptedClient, type ScriptedStream } from "../support/scripted-wire.js";

/*
 * What client.namespace(prefix) puts on the wire and what it hands back, through the whole client
 * over a scripted wire. Keys are compared as latin1 text (one character per byte) so that a wrong
 * byte anywhere, a missing prefix or a "\0" range end shows in the assertion message as it is.
 */

const RANGE = "/etcdserverpb.KV/Range";
const PUT = "/etcdserverpb.KV/Put";
const DELETE = "/etcdserverpb.KV/DeleteRange";
const TXN = "/etcdserverpb.KV/Txn";
const TIME_TO_LIVE = "/etcdserverpb.Lease/LeaseTimeToLive";

const encoder = new TextEncoder();
const bytes = (s: string): Uint8Array => encoder.encode(s);
const text = (b: Uint8Array | undefined): string => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1") : "");
const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex") : "");

let client: ScriptedClient | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
});

/** A one-endpoint client that answers every KV and lease call with an empty response unless a test scripts it. */
function scripted(): ScriptedClient {
  client = new ScriptedClient({ endpoints: ["a:2379"], retry: { maxRetries: 0 } });
  for (const path of [RANGE, PUT, DELETE, TXN, TIME_TO_LIVE]) client.wire.on(path, () => ({}));
  return client;
}

/** The request of the last call to `path` as the wire decoded it. */
function lastRequest<T>(path: string): T {
  const call = client?.wire.sent.filter((c) => c.path === path).at(-1);
  if (!call) throw new Error(`nothing was sent to ${path}`);
  return call.request as T;
}

const keyAndEnd = (r: { key: Uint8Array; rangeEnd: Uint8Array }): [string, string] => [text(r.key), text(r.rangeEnd)];

/** A txn request as nested plain data: every key and range end of every compare and op, recursively. */
type OpShape = [string, ...unknown[]] | undefined;
function opShape(o: RequestOp): OpShape {
  const r = o.request;
  switch (r?.$case) {
    case "requestRange":
      return ["range", ...keyAndEnd(r.requestRange)];
    case "requestPut":
      return ["put", text(r.requestPut.key), r.requestPut.lease];
    case "requestDeleteRange":
      return ["delete", ...keyAndEnd(r.requestDeleteRange)];
    case "requestTxn":
      return ["txn", txnShape(r.requestTxn)];
    default:
      return undefined;
  }
}
function txnShape(t: TxnRequest): { if: [string, string][]; then: OpShape[]; else: OpShape[] } {
  return { if: t.compare.map(keyAndEnd), then: t.success.map(opShape), else: t.failure.map(opShape) };
}

/** The create request the watch stream carried first. */
async function createRequestOn(stream: ScriptedStream) {
  const request = (await stream.nextRequest()) as WatchRequest;
  if (request.requestUnion?.$case !== "createRequest") throw new Error(`expected a create request, got ${request.requestUnion?.$case}`);
  return request.requestUnion.createRequest;
}

describe("keys on the way out get the prefix", () => {
  it("puts under the prefix, with the value and the attached lease untouched", async () => {
    const ns = scripted().namespace("app/");
    await ns.kv.put("k", "v", { lease: 7 });
    const sent = lastRequest<PutRequest>(PUT);
    expect(text(sent.key)).toBe("app/k");
    expect(text(sent.value)).toBe("v");
    expect(sent.lease).toBe(7n);
  });

  it("reads and deletes a single key under the prefix, with no range end", async () => {
    const ns = scripted().namespace("app/");
    await ns.kv.get("k");
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/k", ""]);
    await ns.kv.delete("k");
    expect(keyAndEnd(lastRequest<DeleteRangeRequest>(DELETE))).toEqual(["app/k", ""]);
    // An empty end is etcd's "this key only" too: prefixed, it would be an end before the key.
    await ns.kv.get("k", { end: "" });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/k", ""]);
  });

  it("moves a prefix query and an explicit range end under the prefix", async () => {
    const ns = scripted().namespace("app/");
    await ns.kv.get("dir/", { prefix: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/dir/", "app/dir0"]);
    await ns.kv.get("a", { end: "m" });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/a", "app/m"]);
    await ns.kv.delete("x/", { prefix: true });
    expect(keyAndEnd(lastRequest<DeleteRangeRequest>(DELETE))).toEqual(["app/x/", "app/x0"]);
  });

  // etcd reads a range end of "\0" as "every key from here on": inside a namespace that must
  // stop where the namespace ends, or a read or delete would reach the keys of every later prefix.
  it("ends a from-key range at the end of the namespace, not of the keyspace", async () => {
    const ns = scripted().namespace("app/");
    await ns.kv.get("m", { fromKey: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/m", "app0"]);
    await ns.kv.get("m", { end: "\0" });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/m", "app0"]);
    await ns.kv.delete("m", { fromKey: true });
    expect(keyAndEnd(lastRequest<DeleteRangeRequest>(DELETE))).toEqual(["app/m", "app0"]);
  });

  it("reads an empty key with prefix or fromKey as the whole namespace", async () => {
    const ns = scripted().namespace("app/");
    // From "app/\0", as clientv3/namespace: the namespace's empty key ("app/" itself) is no key
    // etcd would hold outside a namespace, so the whole namespace is every key after it.
    await ns.kv.get("", { prefix: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/\0", "app0"]);
    await ns.kv.get("", { fromKey: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["app/\0", "app0"]);
    await ns.kv.delete("", { prefix: true });
    expect(keyAndEnd(lastRequest<DeleteRangeRequest>(DELETE))).toEqual(["app/\0", "app0"]);
  });

  it("leaves keys and the from-key end alone in the namespace of the empty prefix", async () => {
    const ns = scripted().namespace("");
    await ns.kv.get("m", { fromKey: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["m", "\0"]);
    await ns.kv.get("a", { end: "c" });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["a", "c"]);
  });

  it("prefixes every compare and op of a txn, nested txns included", async () => {
    const ns = scripted().namespace("app/");
    await ns
      .txn()
      .if(compare.value("k", "=", "v"), compare.version("dir/", ">", 0, { prefix: true }), compare.modRevision("", ">", 0, { prefix: true }))
      .then(
        op.put("k", "v2", { lease: 5 }),
        op.get("a", { end: "c" }),
        op.delete("m", { fromKey: true }),
        op.txn({ if: [compare.createRevision("inner", "=", 0)], then: [op.put("inner", "x")], else: [op.get("", { prefix: true })] }),
      )
      .else(op.get("k"))
      .commit();
    expect(txnShape(lastRequest<TxnRequest>(TXN))).toEqual({
      if: [
        ["app/k", ""],
        ["app/dir/", "app/dir0"],
        ["app/\0", "app0"],
      ],
      then: [
        ["put", "app/k", 5n],
        ["range", "app/a", "app/c"],
        ["delete", "app/m", "app0"],
        ["txn", { if: [["app/inner", ""]], then: [["put", "app/inner", 0n]], else: [["range", "app/\0", "app0"]] }],
      ],
      else: [["range", "app/k", ""]],
    });
  });

  it("prefixes the key and range of a watch's create request", async () => {
    const ns = scripted().namespace("app/");
    const single = ns.watch("k");
    const created = await createRequestOn(await client!.wire.nextStream());
    expect(keyAndEnd(created)).toEqual(["app/k", ""]);
    single.cancel();

    const prefixed = ns.watch("dir/", { prefix: true });
    expect(keyAndEnd(await createRequestOn(await client!.wire.nextStream()))).toEqual(["app/dir/", "app/dir0"]);
    prefixed.cancel();

    const fromKey = ns.watch("m", { fromKey: true });
    expect(keyAndEnd(await createRequestOn(await client!.wire.nextStream()))).toEqual(["app/m", "app0"]);
    fromKey.cancel();
  });
});

describe("keys in responses lose the prefix", () => {
  const kv = (key: string, value = "v") => ({ key: bytes(key), value: bytes(value), modRevision: 3n });

  it("strips the keys a range returns", async () => {
    const ns = scripted().namespace("app/");
    client!.wire.on(RANGE, (): DeepPartial<RangeResponse> => ({ kvs: [kv("app/a", "1"), kv("app/b", "2")], count: 2n }));
    const got = await ns.kv.get("", { prefix: true });
    expect(got.kvs.map((k) => [k.keyString, k.valueString])).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
  });

  it("strips the previous key of a put", async () => {
    const ns = scripted().namespace("app/");
    client!.wire.on(PUT, () => ({ prevKv: kv("app/k", "old") }));
    const put = await ns.kv.put("k", "new", { prevKv: true });
    expect(put.prevKv?.keyString).toBe("k");
    expect(put.prevKv?.valueString).toBe("old");
  });

  it("strips every deleted key of a delete", async () => {
    const ns = scripted().namespace("app/");
    client!.wire.on(DELETE, () => ({ deleted: 2n, prevKvs: [kv("app/x/1"), kv("app/x/2")] }));
    const deleted = await ns.kv.delete("x/", { prefix: true, prevKv: true });
    expect(deleted.prevKvs.map((k) => k.keyString)).toEqual(["x/1", "x/2"]);
  });

  it("strips the keys of every txn result, nested txns included", async () => {
    const ns = scripted().namespace("app/");
    client!.wire.on(
      TXN,
      (): DeepPartial<TxnResponse> => ({
        succeeded: true,
        responses: [
          { response: { $case: "responsePut", responsePut: { prevKv: kv("app/k") } } },
          { response: { $case: "responseRange", responseRange: { kvs: [kv("app/a"), kv("app/b")] } } },
          { response: { $case: "responseDeleteRange", responseDeleteRange: { deleted: 1n, prevKvs: [kv("app/m")] } } },
          {
            response: {
              $case: "responseTxn",
              responseTxn: { succeeded: false, responses: [{ response: { $case: "responseRange", responseRange: { kvs: [kv("app/deep")] } } }] },
            },
          },
        ],
      }),
    );
    const res = await ns
      .txn()
      .then(op.put("k", "v", { prevKv: true }), op.get("a", { end: "c" }), op.delete("m", { prevKv: true }), op.txn({ else: [op.get("deep")] }))
      .commit();
    if (!res.succeeded) throw new Error("the scripted txn succeeded");
    const [put, range, deleted, inner] = res.results;
    expect(put.prevKv?.keyString).toBe("k");
    expect(range.kvs.map((k) => k.keyString)).toEqual(["a", "b"]);
    expect(deleted.prevKvs.map((k) => k.keyString)).toEqual(["m"]);
    if (inner.succeeded) throw new Error("the scripted inner txn failed");
    expect(inner.results[0].kvs.map((k) => k.keyString)).toEqual(["deep"]);
  });

  it("strips the key and the previous key of watch events", async () => {
    const ns = scripted().namespace("app/");
    const watcher = ns.watch("", { prefix: true, prevKv: true });
    const stream = await client!.wire.nextStream();
    const { watchId } = await createRequestOn(stream);
    const respond = (r: DeepPartial<WatchResponse>) => stream.respond(r);
    respond({ watchId, created: true, header: { revision: 10n } });
    respond({
      watchId,
      header: { revision: 12n },
      events: [
        { type: Event_EventType.PUT, kv: { ...kv("app/x", "2"), modRevision: 11n }, prevKv: { ...kv("app/x", "1"), modRevision: 9n } },
        { type: Event_EventType.DELETE, kv: { key: bytes("app/y"), modRevision: 12n }, prevKv: { ...kv("app/y", "old"), modRevision: 8n } },
      ],
    });
    const step = await watcher.next();
    if (step.done) throw new Error("the watcher ended");
    expect(step.value.events.map((e) => [e.type, e.kv.keyString, e.prevKv?.keyString, e.prevKv?.valueString])).toEqual([
      ["put", "x", "x", "1"],
      ["delete", "y", "y", "old"],
    ]);
    watcher.cancel();
  });

  it("lists only a lease's keys inside the namespace, stripped", async () => {
    const ns = scripted().namespace("app/");
    client!.wire.on(TIME_TO_LIVE, () => ({ ID: 5n, TTL: 10n, keys: [bytes("app/a"), bytes("other/b"), bytes("ap"), bytes("app/c")] }));
    const ttl = await ns.lease.timeToLive(5, { keys: true });
    expect(ttl.keys.map(text)).toEqual(["a", "c"]);
  });
});

describe("nested namespaces", () => {
  it("compose: a namespace of a namespace works under both prefixes", async () => {
    const outer = scripted().namespace("a/");
    const inner = outer.namespace("b/");
    expect(outer.namespace("b/")).toBe(inner);
    client!.wire.on(RANGE, () => ({ kvs: [{ key: bytes("a/b/x") }] }));
    await inner.kv.put("k", "v");
    expect(text(lastRequest<PutRequest>(PUT).key)).toBe("a/b/k");
    const got = await inner.kv.get("m", { fromKey: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["a/b/m", "a/b0"]);
    expect(got.kvs.map((k) => k.keyString)).toEqual(["x"]);
  });

  it("keep the outer namespace's own keys apart from the inner one's", async () => {
    const outer = scripted().namespace("a/");
    const inner = outer.namespace("b/");
    await outer.kv.put("k", "v");
    expect(text(lastRequest<PutRequest>(PUT).key)).toBe("a/k");
    await inner.kv.get("", { prefix: true });
    expect(keyAndEnd(lastRequest<RangeRequest>(RANGE))).toEqual(["a/b/\0", "a/b0"]);
  });
});

describe("binary prefixes and keys", () => {
  // 0xfe 0xff is no UTF-8; a key of 0x00 0xc3 ends in half a UTF-8 sequence.
  const prefix = new Uint8Array([0xfe, 0xff]);
  const key = new Uint8Array([0x00, 0xc3]);

  it("prefixes and strips bytes that are not UTF-8", async () => {
    const ns = scripted().namespace(prefix);
    client!.wire.on(RANGE, () => ({ kvs: [{ key: new Uint8Array([0xfe, 0xff, 0x00, 0xc3]), value: new Uint8Array([0x80]) }] }));
    await ns.kv.put(key, new Uint8Array([0x80]));
    expect(hex(lastRequest<PutRequest>(PUT).key)).toBe("feff00c3");
    const got = await ns.kv.get(key);
    expect(hex(lastRequest<RangeRequest>(RANGE).key)).toBe("feff00c3");
    expect(got.kvs.map((k) => hex(k.key))).toEqual(["00c3"]);
  });

  it("ends a binary namespace where its prefix ends: the last byte below 0xff goes up, the 0xff bytes after it go", async () => {
    const ns = scripted().namespace(prefix);
    await ns.kv.get(key, { fromKey: true });
    expect([hex(lastRequest<RangeRequest>(RANGE).key), hex(lastRequest<RangeRequest>(RANGE).rangeEnd)]).toEqual(["feff00c3", "ff"]);
    await ns.kv.get(new Uint8Array([0xff]), { prefix: true });
    // The prefix 0xff has no end of its own ("\0"), so it runs to the end of the namespace.
    expect([hex(lastRequest<RangeRequest>(RANGE).key), hex(lastRequest<RangeRequest>(RANGE).rangeEnd)]).toEqual(["feffff", "ff"]);
  });

  it("lets a namespace of only 0xff bytes run to the end of the keyspace, as nothing sorts after it", async () => {
    const ns = scripted().namespace(new Uint8Array([0xff, 0xff]));
    await ns.kv.get("a", { fromKey: true });
    expect([hex(lastRequest<RangeRequest>(RANGE).key), hex(lastRequest<RangeRequest>(RANGE).rangeEnd)]).toEqual(["ffff61", "00"]);
  });
});

describe("what a namespace refuses", () => {
  it("refuses a prefix that is neither a string nor bytes with an InvalidArgumentError", () => {
    const c = scripted();
    const bad = (prefix: unknown) => () => c.namespace(prefix as string);
    expect(bad(42)).toThrow(InvalidArgumentError);
    expect(bad(["a"])).toThrow(expect.objectContaining({ argument: "namespace prefix" }));
    expect(bad(null)).toThrow(/namespace prefix must be a string or a Uint8Array, got null/);
  });

  it("refuses two key selections at once before anything is sent", async () => {
    const ns = scripted().namespace("app/");
    await expect(ns.kv.get("a", { prefix: true, fromKey: true })).rejects.toThrow(InvalidArgumentError);
    expect(() => ns.watch("a", { prefix: true, end: "b" })).toThrow(InvalidArgumentError);
    expect(client!.wire.sent).toEqual([]);
  });

  // As clientv3/namespace does, and etcd outside a namespace: with the prefix in front, an empty key
  // would name "app/" itself, which the namespace's own reads never return, and a delete would
  // remove that key of the enclosing keyspace.
  it("refuses an empty key for put, get and delete, as etcd does outside a namespace (ErrEmptyKey)", async () => {
    const ns = scripted().namespace("app/");
    const outcome = (call: Promise<unknown>) =>
      call.then(
        () => "sent and answered",
        (err: unknown) => (err instanceof ErrEmptyKey ? "ErrEmptyKey" : err),
      );
    expect([await outcome(ns.kv.put("", "v")), await outcome(ns.kv.get("")), await outcome(ns.kv.delete(""))]).toEqual(["ErrEmptyKey", "ErrEmptyKey", "ErrEmptyKey"]);
    expect(client!.wire.sent).toEqual([]);
  });
});

describe("reading a namespace piece by piece (iterate)", () => {
  /** Every key iterate() yields, as text. */
  async function iterated(ns: Keyspace, key: string, options: { prefix?: boolean; pageSize?: number }): Promise<string[]> {
    const keys: string[] = [];
    for await (const kv of ns.kv.iterate(key, options)) keys.push(kv.keyString);
    return keys;
  }

  it("reads pages of Range under the prefix on a server without RangeStream", async () => {
    const ns = scripted().namespace("app/");
    const pages = [
      { kvs: [{ key: bytes("app/a") }, { key: bytes("app/b") }], more: true, header: { revision: 40n } },
      { kvs: [{ key: bytes("app/c") }], more: false, header: { revision: 41n } },
    ];
    let page = 0;
    client!.wire.on(RANGE, () => pages[page++]);
    const reading = iterated(ns, "", { prefix: true, pageSize: 2 });
    const stream = await client!.wire.nextStream();
    stream.fail(Status.UNIMPLEMENTED, "unknown method RangeStream", "answered");
    expect(await reading).toEqual(["a", "b", "c"]);
    const ranges = client!.wire.sent.filter((c) => c.path === RANGE).map((c) => c.request as RangeRequest);
    expect(ranges.map(keyAndEnd)).toEqual([
      ["app/\0", "app0"],
      // The next page starts just after the last key, under the prefix again.
      ["app/b\0", "app0"],
    ]);
    expect(ranges[1]?.revision).toBe(40n);
  });

  // iterate() reads through RangeStream first (etcd 3.7+): it must stay inside the namespace as
  // Range does, or it would read from the root of the keyspace and return full keys.
  it("reads RangeStream under the prefix and strips its keys", async () => {
    const ns = scripted().namespace("app/");
    const reading = iterated(ns, "", { prefix: true });
    const stream = await client!.wire.nextStream();
    const request = stream.call.request as RangeRequest;
    stream.respond({ rangeResponse: { kvs: [{ key: bytes("app/a") }] } });
    stream.end();
    const keys = await reading;
    expect(keyAndEnd(request)).toEqual(["app/\0", "app0"]);
    expect(keys).toEqual(["a"]);
  });
});
