/**
 * The cache over a transport that cannot ask a watch for progress (etcd's gateway): a consistent
 * read whose revision changed nothing in the range moves the cache there by a check, and changes
 * the watch brings later from before that revision (keys created and deleted in between) reach
 * the feeds without touching the state. The watch's timing is what makes this hard to provoke
 * against etcd, so here a fake client holds the watch's events until the test lets them go.
 */
import { describe, expect, it } from "vitest";
import { KeyValue, type GetOptions, type GetResponse, type IterateOptions } from "../../../src/api/kv.js";
import type { WatchObserver, WatchResponse } from "../../../src/api/watch.js";
import { type CacheClient, type CacheUpdate, createCache, UnsupportedByTransportError } from "../../../src/index.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Change {
  revision: bigint;
  type: "put" | "delete";
  key: string;
  value: string;
}

/** An etcd of one revision counter and a history, read at any revision, with a watch the test releases. */
class FakeEtcd {
  readonly history: Change[] = [];
  revision = 1n;
  private observer: WatchObserver | undefined;
  private delivered = 0n;
  reads: string[] = [];

  write(...changes: Omit<Change, "revision">[]): bigint {
    this.revision++;
    for (const change of changes) this.history.push({ ...change, revision: this.revision });
    return this.revision;
  }

  /** The keys between `from` and `to` at `revision`, as etcd keeps them. */
  state(from: string, to: string, revision: bigint): KeyValue[] {
    const keys = new Map<string, KeyValue>();
    for (const change of this.history) {
      if (change.revision > revision || change.key < from || change.key >= to) continue;
      const before = keys.get(change.key);
      if (change.type === "delete") keys.delete(change.key);
      else keys.set(change.key, this.kv(change, before));
    }
    return [...keys.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, kv]) => kv);
  }

  /** Hands the watch every change up to `revision` it has not had yet, one response a revision. */
  release(revision: bigint): void {
    for (let r = this.delivered + 1n; r <= revision; r++) {
      const changes = this.history.filter((c) => c.revision === r && c.key.startsWith("p/"));
      if (changes.length === 0) continue;
      const events = changes.map((c) => ({ type: c.type, kv: this.kv(c, undefined), prevKv: undefined }));
      this.observer!.next({ header: { revision: r } as WatchResponse["header"], events, progress: false }, undefined as never);
    }
    if (revision > this.delivered) this.delivered = revision;
  }

  readonly client: CacheClient = {
    kv: {
      get: async (key, options: GetOptions = {}): Promise<GetResponse> => {
        const at = options.revision === undefined ? this.revision : (options.revision as bigint);
        this.reads.push(options.countOnly ? "count" : options.minModRevision !== undefined ? "changed" : "get");
        const from = typeof key === "string" ? key : decoder.decode(key);
        const to = options.end === undefined ? `${from}\0` : decoder.decode(options.end as Uint8Array);
        let kvs = this.state(from, to, at);
        const count = BigInt(kvs.length);
        if (options.minModRevision !== undefined) kvs = kvs.filter((kv) => kv.modRevision >= (options.minModRevision as bigint));
        if (options.limit) kvs = kvs.slice(0, Number(options.limit as bigint));
        return { header: { revision: this.revision } as GetResponse["header"], kvs: options.countOnly ? [] : kvs, more: false, count };
      },
      iterate: async function* (this: void, key, options: IterateOptions = {}) {
        yield* fake.state(decoder.decode(key as Uint8Array), decoder.decode(options.end as Uint8Array), (options.revision as bigint));
      } as CacheClient["kv"]["iterate"],
    },
    watch: (_key, options) => {
      this.delivered = (options!.startRevision as bigint) - 1n;
      return {
        subscribe: (observer) => void (this.observer = observer),
        requestProgress: () => {
          throw new UnsupportedByTransportError("no stream requests over the gateway");
        },
        progressRequestsUsable: () => Promise.resolve(false),
        cancel: () => undefined,
      };
    },
  };

  private kv(change: Change, before: KeyValue | undefined): KeyValue {
    return new KeyValue({
      key: encoder.encode(change.key),
      value: encoder.encode(change.value),
      createRevision: before?.createRevision ?? change.revision,
      modRevision: change.revision,
      version: (before?.version ?? 0n) + 1n,
      lease: 0n,
    });
  }
}

let fake: FakeEtcd;

function summary(updates: CacheUpdate[]): string[] {
  return updates.map((u) => (u.type === "events" ? `${u.revision}: ${u.events.map((e) => `${e.type} ${e.kv.keyString} was ${e.prevKv?.valueString ?? "-"}`).join(", ")}` : `reset ${u.revision}`));
}

describe("a consistent read without watch progress", () => {
  it("moves the cache to a revision that changed nothing in the range, and keeps keys created and deleted before it out of the state", async () => {
    fake = new FakeEtcd();
    fake.write({ type: "put", key: "p/a", value: "1" });
    await using cache = await createCache(fake.client, { prefix: "p/" });
    expect(cache.revision).toBe(2n);
    const updates: CacheUpdate[] = [];
    cache.changes().subscribe({ next: (u) => updates.push(u), error: (err) => updates.push(err as never) });

    // A key created and deleted again, then a write elsewhere; the watch has brought none of it.
    fake.write({ type: "put", key: "p/tmp", value: "t" });
    fake.write({ type: "delete", key: "p/tmp", value: "" });
    const elsewhere = fake.write({ type: "put", key: "q/x", value: "x" });
    const read = await cache.list({ consistent: true });
    expect(read.revision).toBe(elsewhere);
    expect(read.kvs.map((kv) => kv.keyString)).toEqual(["p/a"]);
    expect(fake.reads.slice(-2).sort()).toEqual(["changed", "count"]);

    // The watch catches up: the feed gets the two changes with their prevKv, the state stays as
    // it was at the revision already answered, and a feed begun after that revision skips them.
    const later = cache.changes();
    fake.release(3n);
    expect(cache.revision).toBe(elsewhere);
    expect((await cache.list()).kvs.map((kv) => kv.keyString)).toEqual(["p/a"]);
    expect((await cache.get("p/tmp")).kv).toBeUndefined();
    fake.release(elsewhere);
    expect(summary(updates)).toEqual(["3: put p/tmp was -", "4: delete p/tmp was t"]);
    expect(cache.revision).toBe(elsewhere);
    expect((await cache.list()).kvs.map((kv) => kv.keyString)).toEqual(["p/a"]);

    const next = fake.write({ type: "put", key: "p/b", value: "2" });
    fake.release(next);
    expect(cache.revision).toBe(next);
    expect((await cache.list()).kvs.map((kv) => kv.keyString)).toEqual(["p/a", "p/b"]);
    expect(summary([(await later.next()).value!])).toEqual([`${next}: put p/b was -`]);
    later.cancel();
  });

  it("waits for the watch when a key in the range changed up to the revision asked for", async () => {
    fake = new FakeEtcd();
    await using cache = await createCache(fake.client, { prefix: "p/" });
    const put = fake.write({ type: "put", key: "p/a", value: "1" });
    let answered = false;
    const reading = cache.get("p/a", { consistent: true }).then((got) => {
      answered = true;
      return got;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The check found the change, so the read waits for the watch rather than answer without it.
    expect(answered).toBe(false);
    expect(fake.reads.filter((r) => r === "changed").length).toBeGreaterThanOrEqual(1);
    fake.release(put);
    const got = await reading;
    expect(got.revision).toBe(put);
    expect(got.kv?.valueString).toBe("1");
  });
});
