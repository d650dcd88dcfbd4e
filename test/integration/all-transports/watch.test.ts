import type { ClientMiddleware } from "nice-grpc-common";
import { describe, expect, it, vi } from "vitest";
import {
  CallCanceledError,
  ClientClosedError,
  ErrCompacted,
  op,
  UnsupportedByTransportError,
  WatchCompactedError,
  type WatchObserver,
  WatchOverflowError,
  type WatchResponse,
  type Watcher,
  WatcherBusyError,
} from "../../../src/index.js";
import { callCounter, clientFor, overGateway, progressNotifyFlag, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

/** Collects events from a watcher until `count` have arrived. */
async function take(watcher: Watcher, count: number): Promise<WatchResponse[]> {
  const responses: WatchResponse[] = [];
  let events = 0;
  for await (const response of watcher) {
    if (response.progress) continue;
    responses.push(response);
    events += response.events.length;
    if (events >= count) break;
  }
  return responses;
}

const flat = (responses: WatchResponse[]) => responses.flatMap((r) => r.events.map((e) => `${e.type} ${e.kv.keyString}=${e.kv.valueString}`));

describe("watch", () => {
  it("fails a reader that falls behind with WatchOverflowError, letting go of its backlog, and resumes from its revision without a gap", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const behind = client.watch(p, { prefix: true, maxBuffered: 20 });
    await behind.ready;
    // 32 writers, 1 KiB each, while the watcher is not read.
    const value = "x".repeat(1024);
    const written: bigint[] = [];
    const heapBefore = process.memoryUsage().heapUsed;
    await Promise.all(
      Array.from({ length: 32 }, async (_, writer) => {
        for (let i = 0; i < 10; i++) written.push((await client.kv.put(`${p}${writer}-${i}`, value)).header.revision);
      }),
    );
    const err = await behind.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WatchOverflowError);
    const { resumeRevision } = err as WatchOverflowError;
    expect(resumeRevision).toBe(written.reduce((a, b) => (a < b ? a : b)));
    // What it held is gone: the 320 responses never piled up past the 20 it could keep.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    const again = client.watch(p, { prefix: true, startRevision: resumeRevision });
    const seen = (await take(again, written.length)).flatMap((r) => r.events.map((e) => e.kv.modRevision));
    again.cancel();
    expect(seen).toEqual([...written].sort((a, b) => (a < b ? -1 : 1)));
  });

  it("delivers puts and deletes of a key, range and prefix as they happen", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const one = client.watch(`${p}a`);
    const prefix = client.watch(p, { prefix: true });
    const range = client.watch(`${p}b`, { end: `${p}d` });
    await Promise.all([one.ready, prefix.ready, range.ready]);
    await client.kv.put(`${p}a`, "1");
    await client.kv.put(`${p}c`, "2");
    await client.kv.delete(`${p}a`);
    await client.kv.put(`${p}z`, "3");
    expect(flat(await take(one, 2))).toEqual([`put ${p}a=1`, `delete ${p}a=`]);
    expect(flat(await take(prefix, 4))).toEqual([`put ${p}a=1`, `put ${p}c=2`, `delete ${p}a=`, `put ${p}z=3`]);
    expect(flat(await take(range, 1))).toEqual([`put ${p}c=2`]);
  });

  it("replays history from a start revision, with previous values and filters", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const first = await client.kv.put(`${p}k`, "1");
    await client.kv.put(`${p}k`, "2");
    await client.kv.delete(`${p}k`);
    const all = await take(client.watch(`${p}k`, { startRevision: first.header.revision, prevKv: true }), 3);
    expect(flat(all)).toEqual([`put ${p}k=1`, `put ${p}k=2`, `delete ${p}k=`]);
    const events = all.flatMap((r) => r.events);
    expect(events[1]?.prevKv?.valueString).toBe("1");
    expect(events[2]?.prevKv?.valueString).toBe("2");
    expect(events[0]?.kv.modRevision).toBe(first.header.revision);
    expect(flat(await take(client.watch(`${p}k`, { startRevision: first.header.revision, noPut: true }), 1))).toEqual([`delete ${p}k=`]);
    expect(flat(await take(client.watch(`${p}k`, { startRevision: first.header.revision, noDelete: true }), 2))).toEqual([`put ${p}k=1`, `put ${p}k=2`]);
  });

  it("puts all events of one revision in one response", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const watcher = client.watch(p, { prefix: true });
    await watcher.ready;
    const txn = await client.txn().then(op.put(`${p}a`, "1"), op.put(`${p}b`, "2"), op.put(`${p}c`, "3")).commit();
    const [response] = await take(watcher, 3);
    expect(response?.events.map((e) => e.kv.modRevision)).toEqual([txn.header.revision, txn.header.revision, txn.header.revision]);
  });

  it("answers progress requests, and sends progress notifications when asked", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const watcher = client.watch(`${p}quiet`);
    await watcher.ready;
    const latest = (await client.kv.put(`${p}other`, "x")).header.revision;
    if (overGateway()) {
      // The gateway cannot take a request on an open stream: a typed error says so.
      expect(() => watcher.requestProgress()).toThrow(UnsupportedByTransportError);
      return;
    }
    watcher.requestProgress();
    for await (const response of watcher) {
      expect(response.progress).toBe(true);
      expect(response.events).toEqual([]);
      expect(response.header.revision).toBeGreaterThanOrEqual(latest);
      break;
    }
  });

  it("receives etcd's periodic progress notifications when asked for them", async () => {
    await using cluster = await startCluster(1, [progressNotifyFlag("500ms")]);
    await using client = clientFor(cluster);
    const p = uniquePrefix();
    const revision = (await client.kv.put(`${p}other`, "x")).header.revision;
    const watcher = client.watch(`${p}quiet`, { progressNotify: true });
    for await (const response of watcher) {
      expect(response.progress).toBe(true);
      expect(response.header.revision).toBeGreaterThanOrEqual(revision);
      break;
    }
  });

  it("shares one stream among many watchers and closes it when the last one ends", async () => {
    const streams = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { outer: [streams.middleware] } });
    const p = uniquePrefix();
    const watchers = Array.from({ length: 50 }, (_, i) => client.watch(`${p}${i}`));
    await Promise.all(watchers.map((w) => w.ready));
    await Promise.all(watchers.map((_, i) => client.kv.put(`${p}${i}`, `v${i}`)));
    const seen = await Promise.all(watchers.map((w) => take(w, 1)));
    expect(seen.map((r) => r[0]?.events[0]?.kv.valueString)).toEqual(watchers.map((_, i) => `v${i}`));
    expect(streams.calls.Watch).toBe(1);
  });

  it("keeps delivering to a fast watcher while another one does not read", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const slow = client.watch(p, { prefix: true });
    const fast = client.watch(p, { prefix: true });
    await Promise.all([slow.ready, fast.ready]);
    for (let i = 0; i < 200; i++) await client.kv.put(`${p}k`, String(i));
    expect((await take(fast, 200)).flatMap((r) => r.events).map((e) => e.kv.valueString)).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    expect((await take(slow, 200)).flatMap((r) => r.events)).toHaveLength(200);
  });

  it("reassembles fragmented responses", async () => {
    // etcd splits a watch response that is over --max-request-bytes plus 512 KiB of gRPC overhead
    // (here 576 KiB); the inner middleware sees the raw parts.
    let fragments = 0;
    const countFragments: ClientMiddleware = async function* (call, options) {
      if (!call.responseStream) return yield* call.next(call.request, options);
      const stream = call.next(call.request, options) as AsyncGenerator<{ fragment?: boolean }, void, undefined>;
      for await (const part of stream) {
        if (part.fragment) fragments++;
        yield part as never;
      }
    } as ClientMiddleware;
    await using cluster = await startCluster(1, ["--max-request-bytes=65536"]);
    await using client = clientFor(cluster, { middleware: { inner: [countFragments] } });
    const p = uniquePrefix();
    const value = "x".repeat(8 * 1024);
    const start = (await client.kv.put(`${p}s00`, value)).header.revision;
    for (let i = 1; i < 100; i++) await client.kv.put(`${p}s${String(i).padStart(2, "0")}`, value);
    // Replaying 100 revisions of 8 KiB each makes one batch of about 800 KiB.
    const responses = await take(client.watch(p, { prefix: true, startRevision: start }), 100);
    expect(fragments).toBeGreaterThan(0);
    const keys = responses.flatMap((r) => r.events.map((e) => e.kv.keyString));
    expect(keys).toEqual(Array.from({ length: 100 }, (_, i) => `${p}s${String(i).padStart(2, "0")}`));
    expect(responses.flatMap((r) => r.events).every((e) => e.kv.value.length === value.length)).toBe(true);
  });

  it("ends with CallCanceledError when its signal fires, and on leaving the loop", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const controller = new AbortController();
    const watcher = client.watch(p, { prefix: true, signal: controller.signal });
    await watcher.ready;
    setTimeout(() => controller.abort(), 50);
    await expect(take(watcher, 1)).rejects.toBeInstanceOf(CallCanceledError);
    const left = client.watch(p, { prefix: true });
    await left.ready;
    await client.kv.put(`${p}k`, "1");
    expect(flat(await take(left, 1))).toEqual([`put ${p}k=1`]);
    // After the loop is left, the watcher is cancelled: iterating again ends at once.
    expect(await take(left, 1)).toEqual([]);
  });

  it("reports a compacted start revision as ErrCompacted with the compact revision", async () => {
    await using cluster = await startCluster(1);
    await using client = clientFor(cluster);
    const p = uniquePrefix();
    const old = (await client.kv.put(`${p}k`, "1")).header.revision;
    const current = (await client.kv.put(`${p}k`, "2")).header.revision;
    await client.kv.compact(current);
    const err = await take(client.watch(`${p}k`, { startRevision: old }), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErrCompacted);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect((err as WatchCompactedError).compactRevision).toBe(current);
  });
});

/** Waits for `check` to pass; the generous timeout is for a loaded machine, a pass comes at once. */
const eventually = (check: () => void) => vi.waitFor(check, { timeout: 15_000, interval: 20 });

/** An observer that writes down every call it gets, naming each watcher by `names`. */
function recorder(names: Map<Watcher, string>) {
  const calls: string[] = [];
  const errors: unknown[] = [];
  const observer: WatchObserver = {
    next: (response, watcher) => calls.push(...flat([response]).map((event) => `${names.get(watcher)} ${event}`)),
    error: (error, watcher) => {
      errors.push(error);
      calls.push(`${names.get(watcher)} error`);
    },
    complete: (watcher) => calls.push(`${names.get(watcher)} complete`),
    ready: (watcher) => calls.push(`${names.get(watcher)} ready`),
  };
  return { calls, errors, observer };
}

describe("watch observers", () => {
  it("hand one observer the responses of many watchers as they arrive, then their end", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const a = client.watch(`${p}a`);
    const b = client.watch(`${p}b`);
    const { calls, errors, observer } = recorder(new Map([[a, "a"], [b, "b"]]));
    a.subscribe(observer);
    b.subscribe(observer);
    await eventually(() => expect(calls.filter((c) => c.endsWith("ready")).sort()).toEqual(["a ready", "b ready"]));
    await client.kv.put(`${p}a`, "1");
    await client.kv.put(`${p}b`, "2");
    await client.kv.delete(`${p}a`);
    await eventually(() => expect(calls).toHaveLength(5));
    // Each watcher's own calls come in order; over the gateway the two are separate streams.
    expect(calls.filter((c) => c.startsWith("a "))).toEqual(["a ready", `a put ${p}a=1`, `a delete ${p}a=`]);
    expect(calls.filter((c) => c.startsWith("b "))).toEqual(["b ready", `b put ${p}b=2`]);
    a.cancel();
    b.cancel();
    expect(calls.slice(5)).toEqual(["a complete", "b complete"]);
    expect(errors).toEqual([]);
  });

  it("takes over from next() without losing or repeating a response, and ends a watcher that ended before", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const first = await client.kv.put(`${p}k`, "1");
    const watcher = client.watch(`${p}k`, { startRevision: first.header.revision });
    const read = await watcher.next();
    expect(read.done ? [] : flat([read.value])).toEqual([`put ${p}k=1`]);
    await client.kv.put(`${p}k`, "2");
    await client.kv.put(`${p}k`, "3");
    // Once another watcher of the key saw both, they are usually queued for this one too (over
    // gRPC the two share a stream); queued or still on their way, each must arrive once.
    await take(client.watch(`${p}k`, { startRevision: first.header.revision + 1n }), 2);
    const { calls, observer } = recorder(new Map([[watcher, "w"]]));
    watcher.subscribe(observer);
    await eventually(() => expect(calls.filter((c) => c.includes(" put "))).toEqual([`w put ${p}k=2`, `w put ${p}k=3`]));
    expect(calls[0]).toBe("w ready");

    const ended = client.watch(`${p}k`);
    ended.cancel();
    const late = recorder(new Map([[ended, "e"]]));
    ended.subscribe(late.observer);
    expect(late.calls).toEqual(["e complete"]);
  });

  it("cancels a watcher whose observer throws, and gives the observer what it threw", async () => {
    const streams = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { outer: [streams.middleware] } });
    const p = uniquePrefix();
    const watcher = client.watch(`${p}k`);
    const thrown = new Error("the observer's own failure");
    const { calls, errors, observer } = recorder(new Map([[watcher, "w"]]));
    watcher.subscribe({
      ...observer,
      next(response, w) {
        observer.next(response, w);
        throw thrown;
      },
    });
    await watcher.ready;
    await client.kv.put(`${p}k`, "1");
    await eventually(() => expect(errors).toEqual([thrown]));
    expect(calls).toEqual(["w ready", `w put ${p}k=1`, "w error"]);
    // Cancelled in the hub: with its only watcher gone the stream closed, so the next watcher opens another.
    const next = client.watch(`${p}k`);
    await next.ready;
    expect(streams.calls.Watch).toBe(2);
    await expect(watcher.next()).rejects.toBeInstanceOf(WatcherBusyError);
  });

  it("ends an observed watcher with CallCanceledError on its signal, ClientClosedError on close", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const controller = new AbortController();
    const signalled = client.watch(`${p}k`, { signal: controller.signal });
    const { errors, observer } = recorder(new Map());
    signalled.subscribe(observer);
    await signalled.ready;
    controller.abort();
    expect(errors[0]).toBeInstanceOf(CallCanceledError);

    await using own = clientFor(etcd.cluster);
    const closing = own.watch(`${p}k`);
    closing.subscribe(observer);
    await closing.ready;
    own.close();
    expect(errors[1]).toBeInstanceOf(ClientClosedError);
    expect(errors).toHaveLength(2);
  });

  it("has one reader per watcher: a second one gets WatcherBusyError", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const { observer } = recorder(new Map());
    const observed = client.watch(`${p}k`);
    observed.subscribe(observer);
    expect(() => observed.subscribe(observer)).toThrow(WatcherBusyError);
    await expect(observed.next()).rejects.toBeInstanceOf(WatcherBusyError);
    const looped = client.watch(`${p}k`);
    const waiting = looped.next();
    expect(() => looped.subscribe(observer)).toThrow(WatcherBusyError);
    looped.cancel();
    expect(await waiting).toEqual({ done: true, value: undefined });
    observed.cancel();
  });
});
