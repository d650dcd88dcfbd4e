import { Status } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import {
  type DeepPartial,
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchRequest,
  type WatchResponse as WatchResponsePb,
} from "../../../gen/etcdserverpb/rpc.js";
import { type Event, Event_EventType } from "../../../gen/mvccpb/kv.js";
import { answersProgressInOrder, type Watcher, type WatchObserver, type WatchResponse, WatchCompactedError, WatchOverflowError } from "../../../src/api/watch.js";
import {
  CallCanceledError,
  ClientClosedError,
  ErrCompacted,
  ErrInvalidAuthToken,
  ErrPermissionDenied,
  EtcdServerError,
  InvalidArgumentError,
  MessageTooLargeError,
  UnsupportedByTransportError,
} from "../../../src/core/errors.js";
import { ScriptedClient, type ScriptedStream } from "../support/scripted-wire.js";

/*
 * The watch hub against a scripted etcd: the test reads the requests the client writes on its one
 * Watch stream and answers them as etcd would (created, events, fragments, progress, cancels), so
 * routing, resumption and error mapping are checked message by message, without a server.
 *
 * What a watcher did NOT receive is checked with a later response as a marker: a watcher's queue
 * is ordered, so if the marker is the next thing it yields, nothing came before it.
 */

let client: ScriptedClient | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
});

function newClient(): ScriptedClient {
  client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"] });
  return client;
}

/**
 * A bound on how long a step may take before the test fails with a message naming what never
 * came, rather than hanging until vitest's timeout. Nothing waits on it when things go right.
 */
const BOUND_MS = 5000;
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${BOUND_MS} ms`)), BOUND_MS);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

const nextStream = (c: ScriptedClient) => within(c.wire.nextStream(), "new watch stream");

// ---- what the client writes ----

type Request = NonNullable<WatchRequest["requestUnion"]>;

async function nextRequest(stream: ScriptedStream): Promise<Request> {
  const request = (await within(stream.nextRequest(), "request on the watch stream")) as WatchRequest;
  if (!request.requestUnion) throw new Error("the client wrote an empty WatchRequest");
  return request.requestUnion;
}

async function nextCreate(stream: ScriptedStream): Promise<WatchCreateRequest> {
  const request = await nextRequest(stream);
  if (request.$case !== "createRequest") throw new Error(`expected a createRequest, the client wrote a ${request.$case}`);
  return request.createRequest;
}

async function nextCancel(stream: ScriptedStream): Promise<bigint> {
  const request = await nextRequest(stream);
  if (request.$case !== "cancelRequest") throw new Error(`expected a cancelRequest, the client wrote a ${request.$case}`);
  return request.cancelRequest.watchId;
}

/** Resolves once the client has ended its side of `stream`: it has let go of the stream. */
async function clientEndedRequests(stream: ScriptedStream): Promise<void> {
  const ended = stream.nextRequest().then(
    (request) => {
      throw new Error(`expected the client to end its requests, it wrote ${String((request as WatchRequest).requestUnion?.$case)}`);
    },
    () => undefined,
  );
  await within(ended, "end of the client's requests");
}

// ---- what etcd answers ----

const utf8 = new TextEncoder();
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function put(key: string, revision: bigint, prev?: string): DeepPartial<Event> {
  return {
    type: Event_EventType.PUT,
    kv: { key: utf8.encode(key), value: utf8.encode(`${key}@${revision}`), createRevision: revision, modRevision: revision, version: 1n },
    prevKv: prev === undefined ? undefined : { key: utf8.encode(key), value: utf8.encode(prev), modRevision: revision - 1n, version: 1n },
  };
}

function del(key: string, revision: bigint): DeepPartial<Event> {
  return { type: Event_EventType.DELETE, kv: { key: utf8.encode(key), modRevision: revision } };
}

const header = (revision: bigint) => ({ clusterId: 7n, memberId: 3n, revision, raftTerm: 2n });

function respond(stream: ScriptedStream, response: DeepPartial<WatchResponsePb>): void {
  stream.respond(response);
}

const created = (stream: ScriptedStream, watchId: bigint, revision: bigint) => respond(stream, { header: header(revision), watchId, created: true });

function events(stream: ScriptedStream, watchId: bigint, revision: bigint, ...changes: DeepPartial<Event>[]): void {
  respond(stream, { header: header(revision), watchId, events: changes });
}

// ---- what a watcher yields ----

async function take(watcher: Watcher): Promise<WatchResponse> {
  const step = await within(watcher.next(), "watch response");
  if (step.done) throw new Error("the watcher ended instead of yielding a response");
  return step.value;
}

/** A response's events in short form: "put k@12". */
const changes = (response: WatchResponse) => response.events.map((e) => `${e.type} ${e.kv.keyString}@${e.kv.modRevision}`);

async function expectEnded(watcher: Watcher): Promise<void> {
  const step = await within(watcher.next(), "end of the watcher");
  expect(step).toEqual({ done: true, value: undefined });
}

async function failureOf(watcher: Watcher): Promise<unknown> {
  return within(
    watcher.next().then(
      (step) => {
        throw new Error(`the watcher yielded ${step.done ? "its end" : "a response"} instead of failing`);
      },
      (err: unknown) => err,
    ),
    "watcher failure",
  );
}

/** A client watching `keys` on one stream, every create read and confirmed by etcd at `revision`. */
async function watching(keys: string[], revision = 10n) {
  const c = newClient();
  const watchers = keys.map((key) => c.watch(key));
  const stream = await nextStream(c);
  const ids: bigint[] = [];
  for (const key of keys) {
    const create = await nextCreate(stream);
    expect(text(create.key)).toBe(key);
    ids.push(create.watchId);
  }
  for (const id of ids) created(stream, id, revision);
  return { client: c, stream, watchers, ids };
}

const PERMISSION_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";

describe("routing on the shared stream", () => {
  it("writes every watcher's create on one stream, in the order watch() was called, each under an ID of its own", async () => {
    const c = newClient();
    c.watch("a");
    c.watch("b");
    c.watch("c");
    const stream = await nextStream(c);
    const creates = [await nextCreate(stream), await nextCreate(stream), await nextCreate(stream)];
    expect(creates.map((r) => text(r.key))).toEqual(["a", "b", "c"]);
    const ids = creates.map((r) => r.watchId);
    // etcd takes 0 to mean "pick one for me", which would leave the client unable to route.
    expect(ids.every((id) => id > 0n)).toBe(true);
    expect(new Set(ids).size).toBe(3);
    // All creates go out without waiting for answers (etcd answers them in order), and once each:
    // the next request is the one asked for after them, not a repeated create.
    c.watch("d").requestProgress();
    expect(text((await nextCreate(stream)).key)).toBe("d");
    expect((await nextRequest(stream)).$case).toBe("progressRequest");
    expect(c.wire.streams).toHaveLength(1);
  });

  it("delivers each response to the watcher whose watch ID it carries", async () => {
    const { stream, watchers, ids } = await watching(["a", "b", "c"]);
    const [a, b, c] = watchers as [Watcher, Watcher, Watcher];
    const [idA, idB, idC] = ids as [bigint, bigint, bigint];
    events(stream, idB, 11n, put("b", 11n));
    events(stream, idC, 12n, put("c", 12n));
    events(stream, idA, 13n, put("a", 13n));
    events(stream, idB, 14n, put("b", 14n));
    expect(changes(await take(a))).toEqual(["put a@13"]);
    expect(changes(await take(b))).toEqual(["put b@11"]);
    expect(changes(await take(b))).toEqual(["put b@14"]);
    expect(changes(await take(c))).toEqual(["put c@12"]);
  });

  it("drops a response for a watch ID it does not know", async () => {
    const { stream, watchers, ids } = await watching(["a"]);
    events(stream, ids[0]! + 100n, 11n, put("elsewhere", 11n));
    events(stream, ids[0]!, 12n, put("a", 12n));
    expect(changes(await take(watchers[0]!))).toEqual(["put a@12"]);
  });

  it("does not deliver etcd's created answer as a response", async () => {
    const { stream, watchers, ids } = await watching(["a"]);
    events(stream, ids[0]!, 11n, put("a", 11n));
    const first = await take(watchers[0]!);
    expect(first.progress).toBe(false);
    expect(changes(first)).toEqual(["put a@11"]);
  });

  it("fails the oldest unanswered create when etcd refuses one without naming it (watch ID -1)", async () => {
    const c = newClient();
    const keys = ["a", "secret/", "c", "d"];
    const [a, denied, later, last] = keys.map((key) => c.watch(key)) as [Watcher, Watcher, Watcher, Watcher];
    const stream = await nextStream(c);
    const ids: bigint[] = [];
    for (const _ of keys) ids.push((await nextCreate(stream)).watchId);
    const [idA, , idC, idD] = ids as [bigint, bigint, bigint, bigint];
    // a's create was answered already: the refusal is for the next one, "secret/".
    created(stream, idA, 10n);
    respond(stream, { header: header(10n), watchId: -1n, created: true, canceled: true, cancelReason: PERMISSION_DENIED });
    created(stream, idC, 10n);
    created(stream, idD, 10n);
    const err = await failureOf(denied);
    expect(err).toBeInstanceOf(ErrPermissionDenied);
    expect(err).toMatchObject({ code: Status.PERMISSION_DENIED, serverMessage: "etcdserver: permission denied" });
    await expect(denied.ready).rejects.toBe(err);
    events(stream, idA, 11n, put("a", 11n));
    events(stream, idC, 12n, put("c", 12n));
    events(stream, idD, 13n, put("d", 13n));
    expect(changes(await take(a))).toEqual(["put a@11"]);
    expect(changes(await take(later))).toEqual(["put c@12"]);
    expect(changes(await take(last))).toEqual(["put d@13"]);
  });
});

describe("fragments", () => {
  it("joins a response etcd split into fragments into one response with all its events", async () => {
    const { stream, watchers, ids } = await watching(["big/"]);
    const id = ids[0]!;
    respond(stream, { header: header(12n), watchId: id, fragment: true, events: [put("big/1", 11n), put("big/2", 11n)] });
    respond(stream, { header: header(12n), watchId: id, fragment: true, events: [put("big/3", 11n)] });
    respond(stream, { header: header(12n), watchId: id, fragment: false, events: [del("big/1", 12n)] });
    events(stream, id, 13n, put("big/4", 13n));
    const joined = await take(watchers[0]!);
    expect(changes(joined)).toEqual(["put big/1@11", "put big/2@11", "put big/3@11", "delete big/1@12"]);
    expect(joined.header.revision).toBe(12n);
    expect(changes(await take(watchers[0]!))).toEqual(["put big/4@13"]);
  });

  it("keeps fragments of different watchers apart", async () => {
    const { stream, watchers, ids } = await watching(["a", "b"]);
    const [idA, idB] = ids as [bigint, bigint];
    respond(stream, { header: header(11n), watchId: idA, fragment: true, events: [put("a", 11n)] });
    respond(stream, { header: header(11n), watchId: idB, fragment: true, events: [put("b", 11n)] });
    respond(stream, { header: header(11n), watchId: idB, events: [put("b2", 11n)] });
    respond(stream, { header: header(11n), watchId: idA, events: [put("a2", 11n)] });
    expect(changes(await take(watchers[0]!))).toEqual(["put a@11", "put a2@11"]);
    expect(changes(await take(watchers[1]!))).toEqual(["put b@11", "put b2@11"]);
  });

  it("holds back a progress notification while a fragmented response is incomplete", async () => {
    const { stream, watchers, ids } = await watching(["big/"]);
    const id = ids[0]!;
    respond(stream, { header: header(11n), watchId: id, fragment: true, events: [put("big/1", 11n)] });
    // It would claim revision 11 complete while half of it is still on the way.
    respond(stream, { header: header(11n), watchId: -1n });
    respond(stream, { header: header(11n), watchId: id, events: [put("big/2", 11n)] });
    expect(changes(await take(watchers[0]!))).toEqual(["put big/1@11", "put big/2@11"]);
  });

  it("after a stream breaks mid-fragments, resumes at the incomplete revision and delivers it once, whole", async () => {
    const { client: c, stream, watchers, ids } = await watching(["big/"]);
    const id = ids[0]!;
    events(stream, id, 11n, put("big/0", 11n));
    expect(changes(await take(watchers[0]!))).toEqual(["put big/0@11"]);
    respond(stream, { header: header(12n), watchId: id, fragment: true, events: [put("big/1", 12n)] });
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    const again = await nextStream(c);
    const create = await nextCreate(again);
    expect(create.startRevision).toBe(12n);
    created(again, create.watchId, 12n);
    respond(again, { header: header(12n), watchId: create.watchId, fragment: true, events: [put("big/1", 12n)] });
    respond(again, { header: header(12n), watchId: create.watchId, events: [put("big/2", 12n)] });
    expect(changes(await take(watchers[0]!))).toEqual(["put big/1@12", "put big/2@12"]);
  });
});

describe("progress", () => {
  it("is taken from etcd versions that answer a progress request in order with their events", () => {
    const ordered = ["3.4.31", "3.4.40", "3.5.13", "3.5.21", "3.6.0", "3.7.1", "3.8.0-alpha.0", "4.0.0"];
    const ahead = ["3.3.27", "3.4.0", "3.4.23", "3.4.30", "3.5.0", "3.5.7", "3.5.12"];
    expect(ordered.filter((v) => !answersProgressInOrder(v))).toEqual([]);
    expect(ahead.filter(answersProgressInOrder)).toEqual([]);
  });

  it("delivers a watcher's own progress notification (progressNotify) as progress at its revision", async () => {
    const { stream, watchers, ids } = await watching(["a", "b"]);
    respond(stream, { header: header(15n), watchId: ids[0]! });
    events(stream, ids[1]!, 16n, put("b", 16n));
    const progress = await take(watchers[0]!);
    expect(progress).toMatchObject({ progress: true, events: [] });
    expect(progress.header.revision).toBe(15n);
    // Only the watcher it names: b's first response is its event.
    expect(changes(await take(watchers[1]!))).toEqual(["put b@16"]);
  });

  it("gives a progress answer for the stream (watch ID -1) to every confirmed watcher, not to one still being created", async () => {
    const c = newClient();
    const a = c.watch("a");
    const b = c.watch("b");
    const pending = c.watch("replaying", { startRevision: 2n });
    const stream = await nextStream(c);
    const [idA, idB, idP] = [(await nextCreate(stream)).watchId, (await nextCreate(stream)).watchId, (await nextCreate(stream)).watchId];
    created(stream, idA, 20n);
    created(stream, idB, 20n);
    respond(stream, { header: header(20n), watchId: -1n });
    created(stream, idP, 20n);
    events(stream, idP, 20n, put("replaying", 3n));
    for (const watcher of [a, b]) {
      const progress = await take(watcher);
      expect(progress).toMatchObject({ progress: true, events: [] });
      expect(progress.header.revision).toBe(20n);
    }
    // A watcher replaying history from revision 2 is not up to date with 20.
    expect(changes(await take(pending))).toEqual(["put replaying@3"]);
  });

  // Seen in robustness runs: a member that was frozen answers the requests that waited all at once.
  it("does not give a watcher created after a progress request the answer to it, though etcd confirmed the watcher first", async () => {
    const c = newClient();
    const a = c.watch("a");
    const stream = await nextStream(c);
    const idA = (await nextCreate(stream)).watchId;
    created(stream, idA, 20n);
    a.requestProgress();
    expect((await nextRequest(stream)).$case).toBe("progressRequest");
    const later = c.watch("replaying", { startRevision: 2n });
    const idL = (await nextCreate(stream)).watchId;
    created(stream, idL, 30n);
    respond(stream, { header: header(30n), watchId: -1n });
    events(stream, idL, 30n, put("replaying", 3n));
    const progress = await take(a);
    expect(progress).toMatchObject({ progress: true, events: [] });
    expect(progress.header.revision).toBe(30n);
    // The replay is what the later watcher sees first, not progress at 30 ahead of it.
    expect(changes(await take(later))).toEqual(["put replaying@3"]);
  });

  it("writes a progress request on the stream for watcher.requestProgress()", async () => {
    const { stream, watchers } = await watching(["a"]);
    watchers[0]!.requestProgress();
    const request = await nextRequest(stream);
    expect(request.$case).toBe("progressRequest");
  });

  it("refuses a progress request where the stream cannot take requests once open (etcd's gateway)", async () => {
    const { client: c, watchers } = await watching(["a"]);
    c.wire.limits.streamRequests = "the gateway reads the whole request body first";
    expect(() => watchers[0]!.requestProgress()).toThrow(UnsupportedByTransportError);
  });

  // etcd answers every progress request it reads, and a caller may wait for that answer to know it
  // has caught up: one asked for while the stream is reopening must not be lost (clientv3 holds it).
  it("sends a progress request asked for while the stream is being reopened, once it is open", async () => {
    const { client: c, stream, watchers } = await watching(["a", "b"]);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    await clientEndedRequests(stream);
    watchers[0]!.requestProgress();
    const again = await nextStream(c);
    await nextCreate(again);
    await nextCreate(again);
    // A request made after the stream opened, so the next request is known to be written by now.
    watchers[1]!.cancel();
    const next = await nextRequest(again);
    expect(next.$case).toBe("progressRequest");
  });
});

describe("compaction", () => {
  it("ends a watcher whose start revision was compacted with WatchCompactedError and its compact revision; the others go on", async () => {
    const c = newClient();
    const old = c.watch("a", { startRevision: 3n });
    const other = c.watch("b");
    const stream = await nextStream(c);
    const [idOld, idOther] = [(await nextCreate(stream)).watchId, (await nextCreate(stream)).watchId];
    created(stream, idOld, 50n);
    created(stream, idOther, 50n);
    respond(stream, { header: header(50n), watchId: idOld, canceled: true, compactRevision: 40n });
    events(stream, idOther, 51n, put("b", 51n));
    const err = await failureOf(old);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect(err).toBeInstanceOf(ErrCompacted);
    expect(err).toMatchObject({ compactRevision: 40n, code: Status.OUT_OF_RANGE });
    expect(changes(await take(other))).toEqual(["put b@51"]);
  });
});

describe("resuming after the stream breaks", () => {
  it("re-creates every watcher on a new stream from the revision after the last one it was given", async () => {
    const c = newClient();
    const withEvents = c.watch("a");
    const idle = c.watch("b");
    const fromRevision = c.watch("c", { startRevision: 5n });
    const unconfirmed = c.watch("d");
    const stream = await nextStream(c);
    const ids: bigint[] = [];
    for (let i = 0; i < 4; i++) ids.push((await nextCreate(stream)).watchId);
    const [idA, idB, idC, idD] = ids as [bigint, bigint, bigint, bigint];
    created(stream, idA, 10n);
    created(stream, idB, 10n);
    created(stream, idC, 10n);
    // The header names the store's revision (etcd sends it for watchers catching up), not the last event's.
    events(stream, idA, 20n, put("a", 14n), put("a", 15n));
    expect(changes(await take(withEvents))).toEqual(["put a@14", "put a@15"]);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");

    const again = await nextStream(c);
    const creates = new Map<bigint, WatchCreateRequest>();
    for (let i = 0; i < 4; i++) {
      const create = await nextCreate(again);
      creates.set(create.watchId, create);
    }
    expect(creates.get(idA)?.startRevision).toBe(16n);
    // Confirmed at 10 with nothing since: everything after 10, which it has not seen.
    expect(creates.get(idB)?.startRevision).toBe(11n);
    // Still replaying from 5 and given nothing yet: 5 again, not the created revision.
    expect(creates.get(idC)?.startRevision).toBe(5n);
    // Never confirmed: etcd never said from when it watched, so it starts afresh.
    expect(creates.get(idD)?.startRevision).toBe(0n);

    for (const id of ids) created(again, id, 21n);
    events(again, idA, 21n, put("a", 16n));
    events(again, idB, 21n, put("b", 17n));
    events(again, idC, 21n, put("c", 6n));
    events(again, idD, 22n, put("d", 22n));
    expect(changes(await take(withEvents))).toEqual(["put a@16"]);
    expect(changes(await take(idle))).toEqual(["put b@17"]);
    expect(changes(await take(fromRevision))).toEqual(["put c@6"]);
    expect(changes(await take(unconfirmed))).toEqual(["put d@22"]);
  });

  it("resumes after the revision of the last progress notification when it is past the last event", async () => {
    const { client: c, stream, watchers, ids } = await watching(["a", "b"]);
    const [idA, idB] = ids as [bigint, bigint];
    events(stream, idA, 12n, put("a", 12n));
    respond(stream, { header: header(30n), watchId: -1n });
    // An older progress must not move the resume point back.
    respond(stream, { header: header(25n), watchId: idB });
    await take(watchers[0]!);
    await take(watchers[0]!);
    await take(watchers[1]!);
    await take(watchers[1]!);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    const again = await nextStream(c);
    const starts = [await nextCreate(again), await nextCreate(again)].map((r): [bigint, bigint] => [r.watchId, r.startRevision]);
    expect(new Map(starts)).toEqual(
      new Map([
        [idA, 31n],
        [idB, 31n],
      ]),
    );
  });

  it("asks for the same keys and options again when it re-creates a watcher", async () => {
    const c = newClient();
    c.watch("cfg/", { prefix: true, prevKv: true, noDelete: true, progressNotify: true });
    const stream = await nextStream(c);
    const first = await nextCreate(stream);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    const again = await nextCreate(await nextStream(c));
    expect({ ...again, startRevision: 0n }).toEqual(first);
  });

  it("moves to another endpoint when the stream's member is down", async () => {
    const { client: c, stream, ids } = await watching(["a"]);
    const broken = stream.call.endpoint;
    c.wire.endpoints.setUp(broken, false);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    const again = await nextStream(c);
    expect(again.call.endpoint).not.toBe(broken);
    expect((await nextCreate(again)).watchId).toBe(ids[0]);
  });

  it("opens the stream again when etcd ends it (as a member that lost its leader does)", async () => {
    const { client: c, stream, watchers, ids } = await watching(["a"]);
    events(stream, ids[0]!, 11n, put("a", 11n));
    await take(watchers[0]!);
    stream.end();
    const create = await nextCreate(await nextStream(c));
    expect(create.startRevision).toBe(12n);
  });

  it("ends every watcher with the error when the stream fails in a way another stream would not fix", async () => {
    const { client: c, stream, watchers } = await watching(["a", "b"]);
    stream.fail(Status.PERMISSION_DENIED, "etcdserver: permission denied", "answered");
    for (const watcher of watchers) expect(await failureOf(watcher)).toBeInstanceOf(ErrPermissionDenied);
    // Nothing reopens the stream for the failed watchers: the next one opened is a new watcher's.
    c.watch("c");
    expect(text((await nextCreate(await nextStream(c))).key)).toBe("c");
    expect(c.wire.streams).toHaveLength(2);
  });

  it("creates a watcher made just as the stream broke once, on the new stream", async () => {
    const { client: c, stream, ids } = await watching(["a"]);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    // The client has not seen the failure yet: this create is queued on the broken stream.
    const early = c.watch("early");
    await expectCreatedOnceOnNextStream(c, ids[0]!, early, "early");
  });

  it("creates a watcher made during the backoff before reconnecting once, on the new stream", async () => {
    const { client: c, stream, ids } = await watching(["a"]);
    stream.fail(Status.UNAVAILABLE, "connection reset", "sent-and-lost");
    await clientEndedRequests(stream);
    const late = c.watch("late");
    await expectCreatedOnceOnNextStream(c, ids[0]!, late, "late");
  });
});

/** The next stream re-creates `existing` and creates `key` (for `added`), each once, and `added` then gets its events. */
async function expectCreatedOnceOnNextStream(c: ScriptedClient, existing: bigint, added: Watcher, key: string): Promise<void> {
  const again = await nextStream(c);
  const creates = [await nextCreate(again), await nextCreate(again)];
  expect(creates.map((r) => text(r.key))).toEqual(["a", key]);
  expect(creates[0]?.watchId).toBe(existing);
  // A duplicate create would come before the progress request asked for after them.
  added.requestProgress();
  expect((await nextRequest(again)).$case).toBe("progressRequest");
  const id = creates[1]!.watchId;
  created(again, existing, 12n);
  created(again, id, 12n);
  events(again, id, 13n, put(key, 13n));
  expect(changes(await take(added))).toEqual([`put ${key}@13`]);
}

describe("memory a server or a slow reader controls", () => {
  it("fails a watcher whose reader falls more than maxBuffered responses behind, naming the revision to resume from; the others go on", async () => {
    const c = newClient();
    const slow = c.watch("a", { maxBuffered: 3 });
    const other = c.watch("b");
    const stream = await nextStream(c);
    const [idSlow, idOther] = [(await nextCreate(stream)).watchId, (await nextCreate(stream)).watchId];
    created(stream, idSlow, 10n);
    created(stream, idOther, 10n);
    events(stream, idSlow, 11n, put("a", 11n));
    expect(changes(await take(slow))).toEqual(["put a@11"]);
    for (const revision of [12n, 13n, 14n, 15n]) events(stream, idSlow, revision, put("a", revision));
    expect(await nextCancel(stream)).toBe(idSlow);
    const err = await failureOf(slow);
    expect(err).toBeInstanceOf(WatchOverflowError);
    // Nothing it held is handed out: it resumes at the first revision its reader did not get.
    expect((err as WatchOverflowError).resumeRevision).toBe(12n);
    events(stream, idOther, 16n, put("b", 16n));
    expect(changes(await take(other))).toEqual(["put b@16"]);
  });

  it("refuses a maxBuffered that is not a positive integer", () => {
    const c = newClient();
    for (const maxBuffered of [0, -1, 1.5, Number.NaN]) expect(() => c.watch("a", { maxBuffered })).toThrow(InvalidArgumentError);
  });

  it("fails a watcher whose fragments pile up past the receive limit, instead of holding them without end", async () => {
    client = new ScriptedClient({ endpoints: ["a:2379"], maxCallRecvMsgSize: 1000 });
    const c = client;
    const flooded = c.watch("a");
    const other = c.watch("b");
    const stream = await nextStream(c);
    const [idFlooded, idOther] = [(await nextCreate(stream)).watchId, (await nextCreate(stream)).watchId];
    created(stream, idFlooded, 10n);
    created(stream, idOther, 10n);
    const big = { type: 0, kv: { key: utf8.encode("a"), value: new Uint8Array(300), modRevision: 11n } };
    for (let i = 0; i < 4; i++) respond(stream, { header: header(11n), watchId: idFlooded, fragment: true, events: [big] });
    expect(await nextCancel(stream)).toBe(idFlooded);
    expect(await failureOf(flooded)).toBeInstanceOf(MessageTooLargeError);
    events(stream, idOther, 12n, put("b", 12n));
    expect(changes(await take(other))).toEqual(["put b@12"]);
  });
});

describe("cancelling", () => {
  it("cancel() writes a cancel request with the watcher's ID, ends its iteration at once and lets go of what it held", async () => {
    const { stream, watchers, ids } = await watching(["a", "b"]);
    const [a, b] = watchers as [Watcher, Watcher];
    const [idA] = ids as [bigint, bigint];
    events(stream, idA, 11n, put("a", 11n));
    expect(changes(await take(a))).toEqual(["put a@11"]);
    events(stream, idA, 12n, put("a", 12n));
    // Let the response reach a's queue before the cancel: the cancel lets go of it.
    events(stream, idA, 13n, put("a", 13n));
    events(stream, ids[1]!, 12n, put("b", 12n));
    await take(b);
    a.cancel();
    expect(await nextCancel(stream)).toBe(idA);
    // What etcd had sent before it read the cancel goes nowhere.
    events(stream, idA, 14n, put("a", 14n));
    respond(stream, { header: header(14n), watchId: idA, canceled: true });
    events(stream, ids[1]!, 15n, put("b", 15n));
    await expectEnded(a);
    expect(changes(await take(b))).toEqual(["put b@15"]);
  });

  it("leaving a for-await loop cancels the watcher", async () => {
    const { stream, watchers, ids } = await watching(["a", "b"]);
    events(stream, ids[0]!, 11n, put("a", 11n));
    for await (const response of watchers[0]!) {
      expect(changes(response)).toEqual(["put a@11"]);
      break;
    }
    expect(await nextCancel(stream)).toBe(ids[0]);
  });

  it("an aborted signal ends the watcher with CallCanceledError and cancels it on the stream", async () => {
    const c = newClient();
    const controller = new AbortController();
    const a = c.watch("a", { signal: controller.signal });
    c.watch("b");
    const stream = await nextStream(c);
    const idA = (await nextCreate(stream)).watchId;
    await nextCreate(stream);
    controller.abort(new Error("shutting down"));
    expect(await failureOf(a)).toBeInstanceOf(CallCanceledError);
    expect(await nextCancel(stream)).toBe(idA);
  });

  it("closes the stream once its last watcher is cancelled, and opens a new one for the next watcher", async () => {
    const { client: c, stream, watchers, ids } = await watching(["a"]);
    watchers[0]!.cancel();
    await expectEnded(watchers[0]!);
    expect(stream.cancelled).toBe(true);
    const b = c.watch("b");
    const again = await nextStream(c);
    const create = await nextCreate(again);
    expect(text(create.key)).toBe("b");
    expect(create.watchId).not.toBe(ids[0]);
    created(again, create.watchId, 11n);
    events(again, create.watchId, 12n, put("b", 12n));
    expect(changes(await take(b))).toEqual(["put b@12"]);
  });

  it("ends a watcher that etcd cancelled with a reason with that reason's typed error", async () => {
    const reasons = [
      PERMISSION_DENIED,
      "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
      // Go spells it Canceled, gRPC's status list CANCELLED.
      "rpc error: code = Canceled desc = context canceled",
      "mvcc: something new",
    ];
    const { stream, watchers, ids } = await watching(["a", "b", "c", "d", "bystander"]);
    reasons.forEach((cancelReason, i) => respond(stream, { header: header(11n), watchId: ids[i]!, canceled: true, cancelReason }));
    events(stream, ids[4]!, 12n, put("bystander", 12n));
    const [denied, stale, canceled, unknown] = await Promise.all(watchers.slice(0, 4).map(failureOf));
    expect(denied).toBeInstanceOf(ErrPermissionDenied);
    expect(denied).toMatchObject({ code: Status.PERMISSION_DENIED, serverMessage: "etcdserver: permission denied" });
    expect(stale).toBeInstanceOf(ErrInvalidAuthToken);
    expect(stale).toMatchObject({ code: Status.UNAUTHENTICATED });
    expect(canceled).toBeInstanceOf(EtcdServerError);
    expect(canceled).toMatchObject({ code: Status.CANCELLED, serverMessage: "context canceled" });
    // A reason that is no Go status is kept whole.
    expect(unknown).toBeInstanceOf(EtcdServerError);
    expect(unknown).toMatchObject({ serverMessage: "mvcc: something new" });
    expect(changes(await take(watchers[4]!))).toEqual(["put bystander@12"]);
  });

  it("ends the iteration of a watcher that etcd cancelled without a reason", async () => {
    const { stream, watchers, ids } = await watching(["a"]);
    events(stream, ids[0]!, 11n, put("a", 11n));
    respond(stream, { header: header(11n), watchId: ids[0]!, canceled: true });
    expect(changes(await take(watchers[0]!))).toEqual(["put a@11"]);
    await expectEnded(watchers[0]!);
  });

  it("a watcher cancelled while its create is in flight stays ended when etcd answers the create", async () => {
    const c = newClient();
    const a = c.watch("a");
    const b = c.watch("b");
    const stream = await nextStream(c);
    const idA = (await nextCreate(stream)).watchId;
    await nextCreate(stream);
    a.cancel();
    expect(await nextCancel(stream)).toBe(idA);
    created(stream, idA, 10n);
    events(stream, idA, 11n, put("a", 11n));
    respond(stream, { header: header(11n), watchId: idA, canceled: true });
    // b's create was answered after a's: the answer to a's must not be taken for b's.
    respond(stream, { header: header(11n), watchId: -1n, created: true, canceled: true, cancelReason: PERMISSION_DENIED });
    await expectEnded(a);
    expect(await failureOf(b)).toBeInstanceOf(ErrPermissionDenied);
  });

  it("client.close() ends every watcher with ClientClosedError", async () => {
    const { client: c, watchers } = await watching(["a", "b"]);
    c.close();
    for (const watcher of watchers) expect(await failureOf(watcher)).toBeInstanceOf(ClientClosedError);
  });
});

describe("what a watcher asks for and gets", () => {
  it("sends the key range, filters, prevKv, progressNotify and start revision asked for, always allowing fragments", async () => {
    const c = newClient();
    c.watch("cfg/", { prefix: true, prevKv: true, noPut: true, noDelete: true, progressNotify: true, startRevision: 42n });
    c.watch("k");
    const stream = await nextStream(c);
    // The wire decodes bytes as Buffers: compare them as text.
    const asked = ({ key, rangeEnd, watchId: _, ...rest }: WatchCreateRequest) => ({ key: text(key), rangeEnd: text(rangeEnd), ...rest });
    expect(asked(await nextCreate(stream))).toEqual({
      key: "cfg/",
      rangeEnd: "cfg0",
      prevKv: true,
      progressNotify: true,
      startRevision: 42n,
      filters: [WatchCreateRequest_FilterType.NOPUT, WatchCreateRequest_FilterType.NODELETE],
      fragment: true,
    });
    expect(asked(await nextCreate(stream))).toEqual({ key: "k", rangeEnd: "", prevKv: false, progressNotify: false, startRevision: 0n, filters: [], fragment: true });
  });

  it("hands out puts and deletes with the previous value and the response header", async () => {
    const { stream, watchers, ids } = await watching(["a"]);
    events(stream, ids[0]!, 12n, put("a", 11n, "old"), del("a", 12n));
    const response = await take(watchers[0]!);
    expect(response.header).toMatchObject({ revision: 12n, clusterId: 7n, memberId: 3n, raftTerm: 2n });
    const [changed, deleted] = response.events;
    expect(changed).toMatchObject({ type: "put" });
    expect(changed?.kv.valueString).toBe("a@11");
    expect(changed?.prevKv?.valueString).toBe("old");
    expect(deleted).toMatchObject({ type: "delete", prevKv: undefined });
    expect(deleted?.kv.modRevision).toBe(12n);
  });

  it("resolves watcher.ready once etcd confirmed the watcher", async () => {
    const c = newClient();
    const a = c.watch("a");
    const order: string[] = [];
    const ready = a.ready.then(() => order.push("ready"));
    const stream = await nextStream(c);
    const id = (await nextCreate(stream)).watchId;
    order.push("created sent");
    created(stream, id, 10n);
    await within(ready, "ready");
    expect(order).toEqual(["created sent", "ready"]);
  });

  it("hands an observer ready, each response in order and the end", async () => {
    const { stream, watchers, ids } = await watching(["a", "marker"]);
    const [a, marker] = watchers as [Watcher, Watcher];
    const seen: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const observer: WatchObserver = {
      next: (response, watcher) => seen.push(`${watcher === a ? "a" : "?"}: ${response.progress ? `progress@${response.header.revision}` : changes(response).join(",")}`),
      error: (err) => seen.push(`error ${String(err)}`),
      complete: () => {
        seen.push("complete");
        done();
      },
      ready: () => seen.push("ready"),
    };
    events(stream, ids[0]!, 11n, put("a", 11n));
    events(stream, ids[1]!, 11n, put("marker", 11n));
    // Once the marker is out, a's response is in a's queue: subscribe must hand it over itself.
    await take(marker);
    a.subscribe(observer);
    expect(seen).toEqual(["ready", "a: put a@11"]);
    events(stream, ids[0]!, 12n, put("a", 12n));
    respond(stream, { header: header(13n), watchId: ids[0]! });
    respond(stream, { header: header(13n), watchId: ids[0]!, canceled: true });
    await within(finished, "observer's complete");
    expect(seen).toEqual(["ready", "a: put a@11", "a: put a@12", "a: progress@13", "complete"]);
  });

  // The create's answer, arriving after the cancel, is dropped: a `ready` asked for before must
  // settle (as with an AbortSignal) rather than leave whoever awaits it hanging.
  it("settles watcher.ready when the watcher is cancelled before etcd confirmed it", async () => {
    const c = newClient();
    const a = c.watch("a");
    const marker = c.watch("marker");
    let settled = false;
    void a.ready.then(
      () => (settled = true),
      () => (settled = true),
    );
    const stream = await nextStream(c);
    const idA = (await nextCreate(stream)).watchId;
    const idMarker = (await nextCreate(stream)).watchId;
    a.cancel();
    created(stream, idA, 10n);
    created(stream, idMarker, 10n);
    events(stream, idMarker, 11n, put("marker", 11n));
    // The marker's event comes after a's created answer: by now the hub has seen both.
    await take(marker);
    expect(settled).toBe(true);
  });
});
