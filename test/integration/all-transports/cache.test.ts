/**
 * The watch-fed cache and the service registry on it, against real etcd. The cache is tested for
 * truth: what it answered at a revision is compared, key for key, with what etcd reads at that
 * revision, under a writer load, member kills, a relist after compaction, and consistent reads.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientMiddleware } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import {
  CacheClosedError,
  type CacheObserver,
  type CacheRelist,
  type CacheUpdate,
  CallCanceledError,
  type Client,
  ClientClosedError,
  compare,
  createCache,
  EndpointManager,
  type EndpointUpdate,
  InvalidArgumentError,
  type KeyValue,
  op,
  RevisionTooOldError,
  Session,
  type WatchCache,
  WatcherBusyError,
} from "../../../src/index.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { argumentOf, cacheWatchingLate, clientFor, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

const FAST_KEEPALIVE_SERVER = ["--grpc-keepalive-min-time=500ms"];

/** What a key-value says, as etcd and the cache must agree on it. */
function fields(kv: KeyValue): string {
  return `${kv.keyString}=${kv.valueString} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`;
}

/** etcd's own answer for the keys under `prefix` at `revision`. */
async function etcdAt(client: Client, prefix: string, revision: bigint): Promise<string[]> {
  return (await client.kv.get(prefix, { prefix: true, revision })).kvs.map(fields);
}

/** Waits until `check` holds, polling; fails the test after `ms`. */
async function until(check: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}


async function rejectedArgument(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof InvalidArgumentError) return err.argument;
  throw new Error(`expected an InvalidArgumentError, got ${String(err)}`);
}

/**
 * A TCP proxy in front of one member: `cut()` drops every connection through it and refuses new
 * ones, as a network partition between the client and etcd would, while the member itself goes on.
 */
class Partition {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  constructor(private readonly target: string) {}

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const [host, port] = this.target.split(":") as [string, string];
    const server = createServer((downstream) => {
      const upstream = connect(Number(port), host);
      for (const socket of [downstream, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => (socket === upstream ? downstream : upstream).destroy());
      }
      downstream.pipe(upstream).pipe(downstream);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", resolve);
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise((resolve) => server?.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Counts the Watch streams a client has open, as seen by its middleware. */
function watchStreams(): { open: () => number; middleware: ClientMiddleware } {
  let open = 0;
  const middleware = async function* (call, options) {
    const watching = call.method.path.endsWith("/Watch");
    if (watching) open++;
    try {
      return yield* call.next(call.request, options);
    } finally {
      if (watching) open--;
    }
  } as ClientMiddleware;
  return { open: () => open, middleware };
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

describe("cache reads", () => {
  it("lists the range once, then answers gets and lists locally at the revision they reflect", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    await client.txn().then(op.put(`${p}a`, "1"), op.put(`${p}b/x`, "2"), op.put(`${p}b/y`, "3"), op.put(`${p}c`, "4"), op.put(`${p.slice(0, -1)}0`, "outside")).commit();
    await using cache = await createCache(client, { prefix: p });
    expect(cache.size).toBe(4);
    const all = await cache.list();
    expect(all.revision).toBe(cache.revision);
    expect(all.kvs.map(fields)).toEqual(await etcdAt(client, p, all.revision));
    expect(all).toMatchObject({ more: false, count: 4 });

    const limited = await cache.list({ limit: 2 });
    expect(limited.kvs.map((kv) => kv.keyString)).toEqual([`${p}a`, `${p}b/x`]);
    expect(limited).toMatchObject({ more: true, count: 4 });
    expect((await cache.list({ prefix: `${p}b/` })).kvs.map((kv) => kv.valueString)).toEqual(["2", "3"]);
    expect((await cache.list({ key: `${p}b/y`, rangeEnd: `${p}d` })).kvs.map((kv) => kv.valueString)).toEqual(["3", "4"]);
    expect((await cache.get(`${p}c`)).kv?.valueString).toBe("4");
    expect((await cache.get(`${p}zz`)).kv).toBeUndefined();

    // A write shows up once the cache has applied its revision, with the key's history intact.
    const put = await client.kv.put(`${p}a`, "1b");
    await cache.waitForRevision(put.header.revision);
    const got = await cache.get(`${p}a`);
    expect(got.revision).toBeGreaterThanOrEqual(put.header.revision);
    expect(fields(got.kv!)).toBe((await client.kv.get(`${p}a`)).kvs.map(fields)[0]);
    const del = await client.kv.delete(`${p}b/`, { prefix: true });
    await cache.waitForRevision(del.header.revision);
    expect((await cache.list()).kvs.map((kv) => kv.keyString)).toEqual([`${p}a`, `${p}c`]);
    expect(cache.size).toBe(2);
  });

  it("caches a range [key, rangeEnd), and a rangeEnd of \\0 means every key from key on", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    await client.txn().then(op.put(`${p}a`, "1"), op.put(`${p}b`, "2"), op.put(`${p}c`, "3")).commit();
    await using range = await createCache(client, { key: `${p}b`, rangeEnd: `${p}c` });
    expect((await range.list()).kvs.map((kv) => kv.keyString)).toEqual([`${p}b`]);
    await using from = await createCache(client, { key: `${p}b`, rangeEnd: "\0" });
    expect((await from.list({ key: `${p}c`, rangeEnd: "\0", limit: 1 })).kvs.map((kv) => kv.keyString)).toEqual([`${p}c`]);
    expect((await from.list({ limit: 2 })).kvs.map((kv) => kv.keyString)).toEqual([`${p}b`, `${p}c`]);
  });

  it("refuses bad input with errors naming the argument", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    expect(await rejectedArgument(createCache(client, {} as never))).toBe("cache range");
    expect(await rejectedArgument(createCache(client, { prefix: 5 } as never))).toBe("cache prefix");
    expect(await rejectedArgument(createCache(client, { prefix: p, key: "a", rangeEnd: "b" } as never))).toBe("cache range");
    expect(await rejectedArgument(createCache(client, { key: "b" } as never))).toBe("cache rangeEnd");
    expect(await rejectedArgument(createCache(client, { key: "b", rangeEnd: "a" }))).toBe("cache rangeEnd");
    expect(await rejectedArgument(createCache(client, { key: "", rangeEnd: "a" }))).toBe("cache key");
    expect(await rejectedArgument(createCache(client, { prefix: p }, { windowSize: -1 }))).toBe("cache windowSize");
    expect(await rejectedArgument(createCache(client, { prefix: p }, { pageSize: 0 }))).toBe("cache pageSize");
    expect(await rejectedArgument(createCache(client, { prefix: p }, { signal: "stop" as never }))).toBe("cache signal");
    expect(await rejectedArgument(createCache({} as never, { prefix: p }))).toBe("cache client");

    await using cache = await createCache(client, { prefix: p });
    expect(await rejectedArgument(cache.get(`${p.slice(0, -1)}0`))).toBe("cache get key");
    expect(await rejectedArgument(cache.get(7 as never))).toBe("cache get key");
    expect(await rejectedArgument(cache.list({ prefix: "other/" }))).toBe("cache list range");
    expect(await rejectedArgument(cache.list({ limit: 1.5 }))).toBe("cache list limit");
    expect(await rejectedArgument(cache.list({ signal: {} as never }))).toBe("cache list signal");
    expect(await rejectedArgument(cache.waitForRevision(-1))).toBe("cache waitForRevision revision");
    expect(argumentOf(() => cache.changes({ fromRevision: "x" as never }))).toBe("cache changes fromRevision");
    expect(argumentOf(() => cache.changes({ maxBuffered: 0 }))).toBe("cache changes maxBuffered");
    const tooOld = (() => {
      try {
        cache.changes({ fromRevision: 1 });
      } catch (err) {
        return err;
      }
    })();
    expect(tooOld).toBeInstanceOf(RevisionTooOldError);
    expect((tooOld as RevisionTooOldError).oldestRevision).toBe(cache.revision + 1n);
  });
});

describe("consistent reads", () => {
  it("see a put another client made just before, in the range or anywhere else", async () => {
    const { client } = etcd;
    await using writer = clientFor(etcd.cluster, { endpoints: [...etcd.cluster.endpoints].reverse() });
    const p = uniquePrefix();
    await using cache = await createCache(client, { prefix: p });
    for (let i = 0; i < 20; i++) {
      const put = await writer.kv.put(`${p}k`, String(i));
      const got = await cache.get(`${p}k`, { consistent: true });
      expect(got.kv?.valueString).toBe(String(i));
      expect(got.revision).toBeGreaterThanOrEqual(put.header.revision);
    }
    // A write outside the range changes none of the cached keys, yet a consistent read reflects
    // its revision: the cache learns that nothing in its range changed up to it.
    for (let i = 0; i < 5; i++) {
      const elsewhere = await writer.kv.put(`${uniquePrefix()}k`, "x");
      const listed = await cache.list({ consistent: true });
      expect(listed.revision).toBeGreaterThanOrEqual(elsewhere.header.revision);
      expect(listed.kvs.map(fields)).toEqual(await etcdAt(client, p, listed.revision));
      const later = await writer.kv.put(`${uniquePrefix()}k`, "y");
      await cache.waitForRevision(later.header.revision);
      expect(cache.revision).toBeGreaterThanOrEqual(later.header.revision);
    }
  });

  it("wait for the events a watch from an older revision is still replaying", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    await using cache = await cacheWatchingLate(client, p, 500);
    const listed = await cache.list({ consistent: true });
    expect(listed.count).toBe(500);
    expect(listed.kvs.map(fields)).toEqual(await etcdAt(client, p, listed.revision));
  });

  it("stop waiting when the signal fires", async () => {
    const { client } = etcd;
    await using cache = await createCache(client, { prefix: uniquePrefix() });
    const controller = new AbortController();
    const waiting = cache.waitForRevision(cache.revision + 1_000_000n, { signal: controller.signal });
    controller.abort(new Error("enough"));
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallCanceledError);
    expect((err as Error).cause).toEqual(new Error("enough"));
    await expect(cache.list({ consistent: true, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CallCanceledError);
  });
});

describe("cache feeds", () => {
  it("deliver each revision's changes with prevKv to a loop and to an observer, and replay from the window", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    await client.kv.put(`${p}a`, "0");
    await using cache = await createCache(client, { prefix: p }, { windowSize: 3 });
    const start = cache.revision;
    const looped = cache.changes();
    const observed: CacheUpdate[] = [];
    const observer: CacheObserver = { next: (u) => observed.push(u), error: (err) => observed.push(err as never) };
    cache.changes().subscribe(observer);

    const r1 = (await client.kv.put(`${p}a`, "1")).header.revision;
    const r2 = (await client.txn().then(op.put(`${p}b`, "2"), op.delete(`${p}a`)).commit()).header.revision;
    const r3 = (await client.kv.put(`${p}c`, "3")).header.revision;
    await cache.waitForRevision(r3);
    const fromLoop: CacheUpdate[] = [];
    for await (const update of looped) {
      fromLoop.push(update);
      if (update.revision === r3) break;
    }
    const summary = (updates: CacheUpdate[]) =>
      updates.map((u) => (u.type === "events" ? `${u.revision}: ${u.events.map((e) => `${e.type} ${e.kv.keyString.slice(p.length)} was ${e.prevKv?.valueString ?? "-"}`).join(", ")}` : "reset"));
    const expected = [`${r1}: put a was 0`, `${r2}: put b was -, delete a was 1`, `${r3}: put c was -`];
    expect(summary(fromLoop)).toEqual(expected);
    await until(() => observed.length === 3);
    expect(summary(observed)).toEqual(expected);

    // A window of 3 events holds the last two revisions (3 events): r2 on can be replayed, r1 not.
    const replay = cache.changes({ fromRevision: r2 });
    const replayed: CacheUpdate[] = [];
    for await (const update of replay) {
      replayed.push(update);
      if (update.revision === r3) break;
    }
    expect(summary(replayed)).toEqual(expected.slice(1));
    expect(() => cache.changes({ fromRevision: r1 })).toThrow(RevisionTooOldError);
    expect(() => cache.changes({ fromRevision: start })).toThrow(RevisionTooOldError);
  });

  it("have one reader, end on their signal, and end when the cache closes", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const cache = await createCache(client, { prefix: p });
    const busy = cache.changes();
    busy.subscribe({ next: () => undefined, error: () => undefined });
    await expect(busy.next()).rejects.toBeInstanceOf(WatcherBusyError);
    expect(() => busy.subscribe({ next: () => undefined, error: () => undefined })).toThrow(WatcherBusyError);

    const controller = new AbortController();
    const signalled = cache.changes({ signal: controller.signal });
    const failed = signalled.next();
    controller.abort();
    await expect(failed).rejects.toBeInstanceOf(CallCanceledError);

    const open = cache.changes();
    const ending = open.next();
    let completed = false;
    cache.changes().subscribe({ next: () => undefined, error: () => undefined, complete: () => (completed = true) });
    const waiting = cache.waitForRevision(cache.revision + 1_000_000n);
    await cache.close();
    expect(await ending).toEqual({ done: true, value: undefined });
    expect(completed).toBe(true);
    await expect(waiting).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.get(`${p}a`)).rejects.toBeInstanceOf(CacheClosedError);
    expect(() => cache.changes()).toThrow(CacheClosedError);
  });
});

describe("cache lifetime", () => {
  it("close() leaves no watch stream and no timer behind", async () => {
    const streams = watchStreams();
    await using client = clientFor(etcd.cluster, { middleware: { outer: [streams.middleware] } });
    await using writer = clientFor(etcd.cluster);
    const p = uniquePrefix();
    await client.kv.get(p);
    const idleTimers = timers();
    const cache = await createCache(client, { prefix: p });
    await until(() => streams.open() === 1, 5000, "the watch stream");
    // Consistent reads and a wait for a revision outside the range run the catch-up loop and its timers.
    await writer.kv.put(`${uniquePrefix()}k`, "x");
    await cache.list({ consistent: true });
    const far = cache.waitForRevision(cache.revision + 1_000_000n).catch(() => undefined);
    await sleep(50);
    await cache.close();
    await far;
    await until(() => streams.open() === 0, 5000, "the watch stream to close");
    await until(() => timers() <= idleTimers, 5000, `timers back to ${idleTimers}`);
  });

  it("closes when its signal fires, and a signal fired before it is listed fails its creation", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const controller = new AbortController();
    const cache = await createCache(client, { prefix: p }, { signal: controller.signal });
    controller.abort();
    await expect(cache.get(`${p}a`)).rejects.toBeInstanceOf(CacheClosedError);
    await expect(createCache(client, { prefix: p }, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CallCanceledError);
    let escaped: WatchCache | undefined;
    {
      await using disposed = await createCache(client, { prefix: p });
      expect(disposed.size).toBe(0);
      escaped = disposed;
    }
    await expect(escaped.list()).rejects.toBeInstanceOf(CacheClosedError);
  });
});

describe("cache failure", () => {
  it("fails reads, waits and feeds with the error that ended its watch", async () => {
    const client = clientFor(etcd.cluster);
    const p = uniquePrefix();
    const cache = await createCache(client, { prefix: p });
    const feed = cache.changes();
    const pending = feed.next();
    const waiting = cache.waitForRevision(cache.revision + 1_000_000n);
    // Handled before the close rejects them, which may be before close() resolves.
    const outcomes = expect(Promise.allSettled([pending, waiting])).resolves.toMatchObject([
      { status: "rejected", reason: expect.any(ClientClosedError) },
      { status: "rejected", reason: expect.any(ClientClosedError) },
    ]);
    await client.close();
    await outcomes;
    await expect(cache.get(`${p}a`)).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => cache.changes()).toThrow(ClientClosedError);
    await cache.close();
    await expect(cache.get(`${p}a`)).rejects.toBeInstanceOf(CacheClosedError);
  });
});

describe("cache truth", () => {
  it("equals etcd at every sampled revision under a writer load through member kills and a leader change", async () => {
    await using cluster = await startCluster(3, FAST_KEEPALIVE_SERVER);
    const fast = { keepAliveTimeMs: 1000, keepAliveTimeoutMs: 1000, dialTimeoutMs: 2000 };
    // The cache's watch stream sits on the first member, which is killed below.
    await using reading = clientFor(cluster, fast);
    await using writing = clientFor(cluster, { ...fast, endpoints: [...cluster.endpoints].reverse() });
    const p = uniquePrefix();
    for (let i = 0; i < 20; i++) await writing.kv.put(`${p}k${i}`, `seed${i}`);
    await using cache = await createCache(reading, { prefix: p });
    const listedAt = cache.revision;
    const updates: CacheUpdate[] = [];
    cache.changes().subscribe({ next: (u) => updates.push(u), error: (err) => updates.push(err as never) });

    // Writers: puts, deletes and multi-key txns on 20 keys until told to stop. A write whose
    // outcome is unknown (its member died) is simply not counted: etcd's history is the reference.
    let stop = false;
    let writes = 0;
    const writer = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const key = `${p}k${(n * 7 + w * 3) % 20}`;
        try {
          if (n % 7 === 3) await writing.kv.delete(key, { deadline: 5000 });
          else if (n % 5 === 4) await writing.txn().if(compare.version(key, ">", -1)).then(op.put(key, `t${w}.${n}`), op.put(`${p}k${(n + 11) % 20}`, `u${w}.${n}`)).commit({ deadline: 5000 });
          else await writing.kv.put(key, `p${w}.${n}`, { deadline: 5000 });
          writes++;
        } catch {
          await sleep(20);
        }
      }
    };
    const writers = [0, 1, 2].map(writer);

    // Samples of what the cache answered, stale and consistent, taken while the writers run.
    const samples: { revision: bigint; kvs: string[] }[] = [];
    const sampler = (async () => {
      for (let n = 0; !stop; n++) {
        const read = n % 4 === 3 ? await cache.list({ consistent: true, signal: AbortSignal.timeout(20_000) }).catch(() => undefined) : await cache.list();
        if (read) samples.push({ revision: read.revision, kvs: read.kvs.map(fields) });
        await sleep(25);
      }
    })();

    const progress = async (n: number) => {
      for (const target = writes + n; writes < target; ) await sleep(20);
    };
    await progress(150);
    await cluster.members[0]!.kill();
    await progress(150);
    await cluster.members[0]!.restart();
    await progress(100);
    const leader = await cluster.leader();
    await leader.kill();
    await progress(150);
    await leader.restart();
    await progress(100);
    // On a loaded machine the writes can outrun the sampler, whose consistent reads wait out the
    // kills: the writers go on until it has enough samples.
    while (samples.length < 25) await sleep(20);
    stop = true;
    await Promise.all([...writers, sampler]);
    const last = await writing.kv.put(`${p}last`, "the last write");

    const final = await cache.list({ consistent: true });
    expect(final.revision).toBeGreaterThanOrEqual(last.header.revision);
    samples.push({ revision: final.revision, kvs: final.kvs.map(fields) });
    expect(samples.length).toBeGreaterThan(20);
    for (const sample of samples) expect(sample.kvs, `at revision ${sample.revision}`).toEqual(await etcdAt(writing, p, sample.revision));

    // The feed gave every change, once, in order: etcd's own history of the prefix, replayed.
    const described = (e: { type: string; kv: KeyValue }) => `${e.type} ${e.kv.keyString} ${e.kv.modRevision}`;
    await until(() => updates.at(-1)?.revision === last.header.revision, 20_000, "the feed to reach the last write");
    expect(updates.every((u) => u.type === "events")).toBe(true);
    const fromFeed = updates.flatMap((u) => (u.type === "events" ? u.events.map(described) : []));
    const history: string[] = [];
    for await (const response of writing.watch(p, { prefix: true, startRevision: listedAt + 1n })) {
      history.push(...response.events.map(described));
      if (response.events.some((e) => e.kv.keyString === `${p}last`)) break;
    }
    expect(fromFeed).toEqual(history);
  }, 180_000);
});

describe("cache relist", () => {
  it("lists anew when the history it needs was compacted during a partition, and says so", async () => {
    await using cluster: EtcdCluster = await startCluster(1);
    const partition = new Partition(cluster.members[0]!.endpoint);
    await partition.open();
    try {
      await using reading = clientFor(cluster, { endpoints: [partition.endpoint], dialTimeoutMs: 2000 });
      await using writing = clientFor(cluster);
      const p = uniquePrefix();
      for (let i = 0; i < 10; i++) await writing.kv.put(`${p}k${i}`, `v${i}`);
      const resets: CacheRelist[] = [];
      await using cache = await createCache(reading, { prefix: p }, { onReset: (r) => resets.push(r) });
      const updates: CacheUpdate[] = [];
      cache.changes().subscribe({ next: (u) => updates.push(u), error: (err) => updates.push(err as never) });
      const before = (await writing.kv.put(`${p}k0`, "before the cut")).header.revision;
      await cache.waitForRevision(before);

      await partition.cut();
      await writing.kv.put(`${p}k1`, "during the cut");
      await writing.kv.delete(`${p}k2`);
      const compacted = (await writing.kv.put(`${p}new`, "created during the cut")).header.revision;
      await writing.kv.compact(compacted, { physical: true });
      // Stale reads go on from what the cache holds while it cannot reach etcd.
      expect((await cache.get(`${p}k1`)).kv?.valueString).toBe("v1");
      await partition.open();

      await until(() => resets.length > 0, 30_000, "the relist");
      const [relist] = resets;
      expect(relist!.revision).toBeGreaterThanOrEqual(compacted);
      expect(relist!.compactRevision).toBe(compacted);
      const reset = updates.find((u) => u.type === "reset");
      expect(reset?.type === "reset" && reset.revision).toBe(relist!.revision);
      expect(reset?.type === "reset" && reset.kvs.map(fields)).toEqual(await etcdAt(writing, p, relist!.revision));
      expect(() => cache.changes({ fromRevision: before })).toThrow(RevisionTooOldError);

      const after = await writing.kv.put(`${p}k3`, "after");
      const listed = await cache.list({ consistent: true });
      expect(listed.revision).toBeGreaterThanOrEqual(after.header.revision);
      expect(listed.kvs.map(fields)).toEqual(await etcdAt(writing, p, listed.revision));
      await until(() => updates.at(-1)?.revision === after.header.revision);
      expect(updates.filter((u) => u.type === "events").map((u) => u.revision)).toEqual([before, after.header.revision]);
    } finally {
      await partition.cut();
    }
  }, 60_000);
});

describe("service registry", () => {
  it("registers endpoints under sessions, and lists and follows the live set", async () => {
    const { client } = etcd;
    await using other = clientFor(etcd.cluster);
    const target = uniquePrefix("svc").slice(0, -1);
    await using manager = new EndpointManager(client, target);
    const follow = manager.watch();
    const first = await other.kv.put(`${target}/static`, JSON.stringify({ Op: 0, Addr: "10.0.0.9:80", Metadata: null }));

    const session = await Session.create(other, { ttl: 5 });
    const registry = new EndpointManager(other, target);
    const added = await registry.addEndpoint(`${target}/a`, { addr: "10.0.0.1:8080", metadata: { zone: "a" } }, { session });
    // clientv3's format, so Go services share the registry.
    expect(JSON.parse((await client.kv.get(`${target}/a`)).kvs[0]!.valueString)).toEqual({ Op: 0, Addr: "10.0.0.1:8080", Metadata: { zone: "a" } });
    expect((await client.kv.get(`${target}/a`)).kvs[0]!.lease).toBe(session.lease);

    // A consistent list sees the endpoint another client just added.
    const listed = await manager.list({ consistent: true });
    expect(listed.revision).toBeGreaterThanOrEqual(added);
    expect(Object.fromEntries(listed.endpoints)).toEqual({
      [`${target}/static`]: { addr: "10.0.0.9:80" },
      [`${target}/a`]: { addr: "10.0.0.1:8080", metadata: { zone: "a" } },
    });

    const seen: EndpointUpdate[][] = [];
    const following = (async () => {
      for await (const updates of follow) {
        seen.push(updates);
        if (updates.some((u) => u.op === "delete" && u.key === `${target}/static`)) break;
      }
    })();
    await registry.addEndpoint(`${target}/b`, { addr: "10.0.0.2:8080" }, { session });
    await other.kv.put(`${target}/junk`, "not an endpoint");
    await session.close(); // revokes the lease: a and b leave the live set
    await registry.deleteEndpoint(`${target}/static`);
    await following;
    const described = seen.map((updates) => updates.map((u) => `${u.op} ${u.key.slice(target.length + 1)} ${u.endpoint?.addr ?? ""}`).sort());
    expect(first.header.revision).toBeGreaterThan(0n);
    // The first batch is the live set when the watch began; a and b leave together with the lease.
    expect(described).toEqual([["add a 10.0.0.1:8080", "add static 10.0.0.9:80"], ["add b 10.0.0.2:8080"], ["delete a ", "delete b "], ["delete static "]]);
    expect(Object.fromEntries((await manager.list({ consistent: true })).endpoints)).toEqual({});
  });

  it("refuses bad input with errors naming the argument", async () => {
    const { client } = etcd;
    expect(argumentOf(() => new EndpointManager(client, ""))).toBe("endpoint target");
    const manager = new EndpointManager(client, "svc");
    expect(await rejectedArgument(manager.addEndpoint("other/a", { addr: "x:1" }))).toBe("endpoint key");
    expect(await rejectedArgument(manager.addEndpoint("svc/", { addr: "x:1" }))).toBe("endpoint key");
    expect(await rejectedArgument(manager.addEndpoint("svc/a", { addr: "" }))).toBe("endpoint addr");
    expect(await rejectedArgument(manager.deleteEndpoint("svc"))).toBe("endpoint key");
    await manager.close();
    await expect(manager.list()).rejects.toBeInstanceOf(CacheClosedError);
  });
});
