import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WatchRequest } from "../../../gen/etcdserverpb/rpc.js";
import type { WatchResponse } from "../../../src/api/watch.js";
import { ScriptedClient, type ScriptedStream } from "../support/scripted-wire.js";

/*
 * A watch stream whose member falls silent (frozen, or its link dropping packets without closing)
 * is probed with a progress request after 5 s, and moved to another member when that goes
 * unanswered for 2 s, resuming every watcher after its last revision. On fake timers: the
 * schedule is what is tested, to the millisecond. test/integration covers frozen members.
 */

let client: ScriptedClient | undefined;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

const header = (revision: bigint) => ({ clusterId: 1n, memberId: 1n, revision, raftTerm: 2n });

/** The kinds of request the client has written on `stream` so far, taken off it. */
async function requests(stream: ScriptedStream): Promise<string[]> {
  await settle();
  const kinds: string[] = [];
  while (stream.pendingRequests > 0) kinds.push(((await stream.nextRequest()) as WatchRequest).requestUnion?.$case ?? "empty");
  return kinds;
}

/** A client of a and b with one watcher confirmed at revision 10 on a's stream. */
async function watching(): Promise<{ c: ScriptedClient; stream: ScriptedStream; seen: WatchResponse[]; id: bigint }> {
  client = new ScriptedClient({ endpoints: ["a:2379", "b:2379"] });
  const c = client;
  const seen: WatchResponse[] = [];
  c.watch("k").subscribe({ next: (response) => void seen.push(response), error: () => {} });
  await settle();
  const stream = c.wire.streams[0]!;
  expect(stream.call.endpoint).toBe("a:2379");
  const create = (await stream.nextRequest()) as WatchRequest;
  if (create.requestUnion?.$case !== "createRequest") throw new Error("the client did not create the watcher first");
  const id = create.requestUnion.createRequest.watchId;
  stream.respond({ header: header(10n), watchId: id, created: true });
  await settle();
  return { c, stream, seen, id };
}

describe("a silent watch stream", () => {
  it("asks its member for progress after 5 s of silence, and stays when it answers, telling the watcher nothing", async () => {
    const { c, stream, seen } = await watching();
    await advance(4_500);
    expect(await requests(stream)).toEqual([]);
    await advance(1_000);
    expect(await requests(stream)).toEqual(["progressRequest"]);
    stream.respond({ header: header(10n), watchId: -1n });
    await advance(4_000);
    expect(stream.cancelled).toBe(false);
    expect(c.wire.streams).toHaveLength(1);
    // The answer to the client's own probe is no progress notification the watcher asked for.
    expect(seen).toEqual([]);
  });

  it("moves to another member when the progress request goes unanswered for 2 s, resuming after the last revision", async () => {
    const { c, stream, id } = await watching();
    stream.respond({ header: header(11n), watchId: id, events: [{ kv: { key: new TextEncoder().encode("k"), modRevision: 11n, createRevision: 11n, version: 1n } }] });
    await advance(5_500);
    expect(await requests(stream)).toEqual(["progressRequest"]);
    await advance(1_000);
    expect(stream.cancelled).toBe(false);
    await advance(1_000);
    expect(stream.cancelled).toBe(true);
    const moved = c.wire.streams[1]!;
    expect(moved.call.endpoint).toBe("b:2379");
    const resumed = (await moved.nextRequest()) as WatchRequest;
    expect(resumed.requestUnion).toMatchObject({ $case: "createRequest", createRequest: { startRevision: 12n } });
  });

  it("is left alone while events or answers keep coming", async () => {
    const { c, stream, id } = await watching();
    for (let revision = 11n; revision < 20n; revision++) {
      await advance(4_000);
      stream.respond({ header: header(revision), watchId: id, events: [{ kv: { key: new TextEncoder().encode("k"), modRevision: revision, createRevision: 11n, version: 1n } }] });
    }
    expect(await requests(stream)).toEqual([]);
    expect(c.wire.streams).toHaveLength(1);
  });
});
