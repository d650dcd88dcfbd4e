/**
 * Watch streams of the in-memory etcd: what etcd sends and when, checked where timing or sizes
 * are hard to provoke on a real etcd (progress notifications on a ManualClock, fragments).
 */
import type { ClientMiddleware } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock, MemoryEtcd, type MemoryEtcdOptions, type MemoryClient, type WatchResponse, type Watcher } from "../../../src/testing.js";

let etcd: MemoryEtcd | undefined;
afterEach(async () => {
  await etcd?.close();
  etcd = undefined;
});

/** A client whose watch responses are also recorded as they come off the wire (fragments apart). */
function start(options: MemoryEtcdOptions = {}): { client: MemoryClient; wire: { watchId: bigint; fragment: boolean; events: number; progress: boolean }[] } {
  etcd = new MemoryEtcd(options);
  const wire: { watchId: bigint; fragment: boolean; events: number; progress: boolean }[] = [];
  const recorder = async function* (call, callOptions) {
    if (!call.method.path.endsWith("/Watch")) return yield* call.next(call.request, callOptions);
    for await (const response of call.next(call.request, callOptions) as AsyncIterable<{ watchId: bigint; fragment: boolean; events: unknown[]; created: boolean; canceled: boolean }>) {
      if (!response.created && !response.canceled) wire.push({ watchId: response.watchId, fragment: response.fragment, events: response.events.length, progress: response.events.length === 0 });
      yield response as never;
    }
  } as ClientMiddleware;
  return { client: etcd.client({ middleware: { inner: [recorder] } }), wire };
}

async function next(watcher: Watcher): Promise<WatchResponse> {
  return ((await watcher.next()) as IteratorYieldResult<WatchResponse>).value;
}

describe("progress notifications", () => {
  it("come every interval on the clock to the watchers that asked, while no events come", async () => {
    const clock = new ManualClock();
    const { client, wire } = start({ clock, watchProgressNotifyIntervalMs: 1_000 });
    const quiet = client.watch("quiet", { progressNotify: true });
    const busy = client.watch("busy", { progressNotify: true });
    const silent = client.watch("silent");
    await Promise.all([quiet.ready, busy.ready, silent.ready]);
    const { header } = await client.kv.put("busy", "1");
    await next(busy);
    clock.advance(1_000);
    const progress = await next(quiet);
    expect(progress.progress).toBe(true);
    expect(progress.header.revision).toBe(header.revision);
    // The busy one got an event since the last tick: no notification this time, one at the next.
    expect(wire.filter((r) => r.progress).length).toBe(1);
    clock.advance(1_000);
    expect((await next(busy)).progress).toBe(true);
    expect(wire.filter((r) => r.progress).length).toBe(3);
    for (const w of [quiet, busy, silent]) w.cancel();
  });

  it("are not sent for a watcher of a future revision, which has not seen up to now", async () => {
    const clock = new ManualClock();
    const { client, wire } = start({ clock, watchProgressNotifyIntervalMs: 1_000 });
    const { header } = await client.kv.put("k", "1");
    const future = client.watch("k", { startRevision: header.revision + 5n, progressNotify: true });
    await future.ready;
    future.requestProgress();
    clock.advance(5_000);
    await client.kv.put("other", "1");
    expect(wire).toEqual([]);
    future.cancel();
  });
});

describe("fragments", () => {
  it("split a response over maxRequestBytes plus 512 KiB into parts under it", async () => {
    const { client, wire } = start({ maxRequestBytes: 128 * 1024 });
    const value = "x".repeat(64 * 1024);
    const first = (await client.kv.put("f/00", value)).header.revision;
    for (let i = 1; i < 12; i++) await client.kv.put(`f/${String(i).padStart(2, "0")}`, value);
    const watcher = client.watch("f/", { prefix: true, startRevision: first });
    const response = await next(watcher);
    // One response of 12 events of 64 KiB, sent as parts of under 640 KiB: 9 events, then 3.
    expect(response.events).toHaveLength(12);
    expect(wire.map((r) => [r.events, r.fragment])).toEqual([
      [9, true],
      [3, false],
    ]);
    watcher.cancel();
  });
});

describe("history", () => {
  it("is replayed to a watcher from the past in one response with the current revision, then changes come as they happen", async () => {
    const { client } = start();
    const first = (await client.kv.put("h", "1")).header.revision;
    await client.kv.put("h", "2");
    const current = (await client.kv.put("other", "x")).header.revision;
    const watcher = client.watch("h", { startRevision: first, prevKv: true });
    const replay = await next(watcher);
    expect(replay.header.revision).toBe(current);
    expect(replay.events.map((e) => `${e.kv.valueString} after ${e.prevKv?.valueString}`)).toEqual(["1 after undefined", "2 after 1"]);
    const { header } = await client.kv.delete("h");
    const live = await next(watcher);
    expect(live.header.revision).toBe(header.revision);
    expect(live.events.map((e) => `${e.type} ${e.prevKv?.valueString}`)).toEqual(["delete 2"]);
    watcher.cancel();
  });
});
