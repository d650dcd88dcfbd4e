/**
 * The experimental recipes (RWMutex, Barrier, DoubleBarrier, Queue, PriorityQueue) and STM over
 * bytes, against a real etcd. A correct recipe passes whatever the timing: the pauses below only
 * give a broken one the time to show itself (a waiter let through early, an item served twice).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  Barrier,
  BarrierFullError,
  CallCanceledError,
  DoubleBarrier,
  LockedError,
  NotLockedError,
  PriorityQueue,
  Queue,
  runStm,
  RWMutex,
  Session,
  type Bytes,
  type KeyValue,
} from "../../../src/index.js";
import { argumentOf, bytes, clientFor, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

/** Long enough for a broken recipe to let a waiter through; a correct one is unaffected by it. */
const PAUSE_MS = 500;

/** A promise with a flag that says whether it has settled yet. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const tracked = { promise, settled: false };
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

/** Fires `controller` and says how `pending` ended and how long after the abort it took. */
async function abortAndTime(controller: AbortController, pending: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const firedAt = performance.now();
  controller.abort();
  const error = await pending.then(
    () => undefined,
    (err: unknown) => err,
  );
  return { error, ms: performance.now() - firedAt };
}

async function countUnder(prefix: string): Promise<bigint> {
  return (await etcd.client.kv.get(prefix, { prefix: true, countOnly: true })).count;
}

async function waitForCount(prefix: string, n: number): Promise<void> {
  while ((await countUnder(prefix)) < BigInt(n)) await sleep(10);
}

/** Bytes no UTF-8 decoder round-trips: every byte value, then invalid sequences. */
const BINARY = new Uint8Array([...Array.from({ length: 256 }, (_, i) => i), 0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]);

describe("recipes' input checks", () => {
  it("refuses bad input with InvalidArgumentError naming the argument", async () => {
    const { client } = etcd;
    await using session = await Session.create(client, { ttl: 10 });
    expect(argumentOf(() => new Barrier(client, ""))).toBe("barrier key");
    expect(argumentOf(() => new DoubleBarrier(session, "", 2))).toBe("double barrier key");
    for (const count of [0, -1, 1.5, Number.NaN]) expect(argumentOf(() => new DoubleBarrier(session, "db", count))).toBe("count");
    expect(argumentOf(() => new RWMutex(session, ""))).toBe("rwmutex prefix");
    expect(argumentOf(() => new Queue(client, ""))).toBe("queue prefix");
    expect(argumentOf(() => new PriorityQueue(client, ""))).toBe("priority queue prefix");
    expect(argumentOf(() => new Queue(client, 7 as unknown as string))).toBe("queue prefix");

    const p = uniquePrefix();
    const pq = new PriorityQueue(client, `${p}pq`);
    for (const priority of [-1, 65536, 1.5, Number.NaN, Infinity]) {
      await expect(pq.enqueue("x", priority)).rejects.toMatchObject({ name: "InvalidArgumentError", argument: "priority" });
    }
    await expect(pq.enqueue(42 as unknown as Bytes, 1)).rejects.toMatchObject({ argument: "priority queue value" });
    await expect(new Queue(client, `${p}q`).enqueue(42 as unknown as Bytes)).rejects.toMatchObject({ argument: "queue value" });
    // Nothing was written by the refused calls.
    expect(await countUnder(p)).toBe(0n);
  });
});

describe("Barrier", () => {
  it("holds every waiter until release, even while its key is rewritten, and lets all through then", async () => {
    const p = uniquePrefix();
    const barrier = new Barrier(etcd.client, `${p}barrier`);
    await barrier.hold();
    await barrier.hold(); // holding twice is harmless
    let released = false;
    const waiters = Array.from({ length: 3 }, () => track(new Barrier(etcd.client, `${p}barrier`).wait().then(() => released)));
    await sleep(PAUSE_MS);
    // A put is an event too, but not a release.
    await etcd.client.kv.put(`${p}barrier`, "rewritten");
    await sleep(PAUSE_MS);
    expect(waiters.map((w) => w.settled)).toEqual([false, false, false]);
    released = true;
    await barrier.release();
    expect(await Promise.all(waiters.map((w) => w.promise))).toEqual([true, true, true]);
    // Not held: wait() returns at once.
    await barrier.wait({ signal: AbortSignal.timeout(10_000) });
  });

  it("gives up waiting within a second of its signal, leaving the barrier held", async () => {
    const p = uniquePrefix();
    const barrier = new Barrier(etcd.client, `${p}barrier`);
    await barrier.hold();
    const controller = new AbortController();
    const waiting = track(barrier.wait({ signal: controller.signal }));
    await sleep(PAUSE_MS);
    expect(waiting.settled).toBe(false);
    const { error, ms } = await abortAndTime(controller, waiting.promise);
    expect(error).toBeInstanceOf(CallCanceledError);
    expect(ms).toBeLessThan(1000);
    expect(await countUnder(`${p}barrier`)).toBe(1n);
    await barrier.release();
  });
});

describe("DoubleBarrier", () => {
  it("lets nobody in before count have entered, nor out before all have left, and refuses one too many", async () => {
    const p = uniquePrefix();
    const count = 3;
    const sessions = await Promise.all(Array.from({ length: count + 1 }, () => Session.create(etcd.client, { ttl: 10 })));
    const barriers = sessions.map((s) => new DoubleBarrier(s, `${p}db`, count));
    /**
     * Two participants take `step` and must still wait after a pause; the third takes it, and each
     * of the three, when let through, must have seen all three calls made.
     */
    const allOrNone = async (step: (b: DoubleBarrier) => Promise<void>) => {
      let calls = 0;
      const take = (b: DoubleBarrier) => {
        calls++;
        return track(step(b).then(() => calls));
      };
      const taking = [take(barriers[0]!), take(barriers[1]!)];
      await sleep(PAUSE_MS);
      expect(taking.map((t) => t.settled)).toEqual([false, false]);
      taking.push(take(barriers[2]!));
      expect(await Promise.all(taking.map((t) => t.promise))).toEqual([count, count, count]);
    };
    await allOrNone((b) => b.enter());
    await expect(barriers[count]!.enter()).rejects.toBeInstanceOf(BarrierFullError);
    expect(await countUnder(`${p}db/waiters/`)).toBe(BigInt(count));
    // The first to enter leaves last: start with it and one other, so that both ways of waiting are tried.
    await allOrNone((b) => b.leave());
    expect(await countUnder(`${p}db/`)).toBe(0n);
    for (const s of sessions) await s.close();
  });

  it("withdraws a participant that gives up entering, within a second, so that it is not counted", async () => {
    const p = uniquePrefix();
    const sessions = await Promise.all([0, 1, 2].map(() => Session.create(etcd.client, { ttl: 10 })));
    const [quitter, a, b] = sessions.map((s) => new DoubleBarrier(s, `${p}db`, 2));
    const controller = new AbortController();
    const entering = track(quitter!.enter({ signal: controller.signal }));
    await waitForCount(`${p}db/waiters/`, 1);
    await sleep(PAUSE_MS);
    expect(entering.settled).toBe(false);
    const { error, ms } = await abortAndTime(controller, entering.promise);
    expect(error).toBeInstanceOf(CallCanceledError);
    expect(ms).toBeLessThan(1000);
    expect(await countUnder(`${p}db/waiters/`)).toBe(0n);
    // Had the quitter stayed counted, `a` would be let in alone and `b` refused.
    const first = track(a!.enter());
    await sleep(PAUSE_MS);
    expect(first.settled).toBe(false);
    await Promise.all([first.promise, b!.enter()]);
    await Promise.all([a!.leave(), b!.leave()]);
    for (const s of sessions) await s.close();
  });
});

describe("Queue", () => {
  it("serves items first in, first out, as bytes and as text, and blocks while empty", async () => {
    const p = uniquePrefix();
    const queue = new Queue(etcd.client, `${p}queue`);
    const values: Bytes[] = ["one", BINARY, "three", new Uint8Array(), "fünf"];
    for (const v of values) await queue.enqueue(v);
    for (const v of values) {
      const item = await queue.dequeue({ signal: AbortSignal.timeout(10_000) });
      if (typeof v === "string") expect(item.valueString).toBe(v);
      expect(bytes(item.value)).toEqual(typeof v === "string" ? new TextEncoder().encode(v) : v);
    }
    const waiting = track(queue.dequeue({ signal: AbortSignal.timeout(20_000) }));
    await sleep(PAUSE_MS);
    expect(waiting.settled).toBe(false);
    await queue.enqueue("late");
    expect((await waiting.promise).valueString).toBe("late");
    expect(await countUnder(`${p}queue/`)).toBe(0n);
  });

  it("hands each of many items to exactly one of several concurrent consumers", async () => {
    const p = uniquePrefix();
    const producers = 3;
    const perProducer = 50;
    const total = producers * perProducer;
    const done = new AbortController();
    const received: string[][] = [];
    let taken = 0;
    // Consumers start first, so that they also meet an empty queue and wait on it.
    const consumers = Array.from({ length: 4 }, async (_, c) => {
      await using client = clientFor(etcd.cluster);
      const queue = new Queue(client, `${p}queue`);
      const mine: string[] = (received[c] = []);
      for (;;) {
        let item: KeyValue;
        try {
          item = await queue.dequeue({ signal: done.signal });
        } catch (err) {
          if (done.signal.aborted) return;
          throw err;
        }
        mine.push(item.valueString);
        if (++taken === total) done.abort();
      }
    });
    await sleep(100);
    await Promise.all(
      Array.from({ length: producers }, async (_, producer) => {
        await using client = clientFor(etcd.cluster);
        const queue = new Queue(client, `${p}queue`);
        for (let i = 0; i < perProducer; i++) await queue.enqueue(`${producer}:${String(i).padStart(3, "0")}`);
      }),
    );
    await Promise.all(consumers);

    const all = received.flat();
    const expected = Array.from({ length: producers }, (_, producer) => Array.from({ length: perProducer }, (_, i) => `${producer}:${String(i).padStart(3, "0")}`)).flat();
    expect(all.length).toBe(total);
    expect([...all].sort()).toEqual(expected.sort());
    // First in, first out: each consumer got each producer's items in the order they were sent.
    for (const mine of received) {
      for (let producer = 0; producer < producers; producer++) {
        const fromProducer = mine.filter((v) => v.startsWith(`${producer}:`));
        expect(fromProducer).toEqual([...fromProducer].sort());
      }
    }
    expect(await countUnder(`${p}queue/`)).toBe(0n);
  }, 60_000);

  it("gives up a dequeue within a second of its signal, taking nothing", async () => {
    const p = uniquePrefix();
    const queue = new Queue(etcd.client, `${p}queue`);
    const controller = new AbortController();
    const waiting = track(queue.dequeue({ signal: controller.signal }));
    await sleep(PAUSE_MS);
    expect(waiting.settled).toBe(false);
    const { error, ms } = await abortAndTime(controller, waiting.promise);
    expect(error).toBeInstanceOf(CallCanceledError);
    expect(ms).toBeLessThan(1000);
    await queue.enqueue("kept");
    await sleep(PAUSE_MS);
    expect((await queue.dequeue({ signal: AbortSignal.timeout(10_000) })).valueString).toBe("kept");
  });
});

describe("PriorityQueue", () => {
  it("serves the lowest priority number first, first in first out within a priority", async () => {
    const p = uniquePrefix();
    const queue = new PriorityQueue(etcd.client, `${p}pq`);
    const items: [string, number][] = [
      ["a", 5],
      ["b", 1],
      ["c", 5],
      ["d", 0],
      ["e", 65535],
      ["f", 1],
      ["g", 0],
      ["h", 10],
      ["i", 9],
    ];
    for (const [value, priority] of items) await queue.enqueue(value, priority);
    const served: string[] = [];
    for (let n = 0; n < items.length; n++) served.push((await queue.dequeue({ signal: AbortSignal.timeout(10_000) })).valueString);
    expect(served).toEqual(["d", "g", "b", "f", "a", "c", "i", "h", "e"]);

    const waiting = track(queue.dequeue({ signal: AbortSignal.timeout(20_000) }));
    await sleep(PAUSE_MS);
    expect(waiting.settled).toBe(false);
    await queue.enqueue(BINARY, 7);
    expect(bytes((await waiting.promise).value)).toEqual(BINARY);
  });

  it("loses no item and keeps each producer's order when producers share a priority", async () => {
    const p = uniquePrefix();
    const producers = 3;
    const perProducer = 20;
    await Promise.all(
      Array.from({ length: producers }, async (_, producer) => {
        await using client = clientFor(etcd.cluster);
        const queue = new PriorityQueue(client, `${p}pq`);
        for (let i = 0; i < perProducer; i++) await queue.enqueue(`${producer}:${String(i).padStart(3, "0")}`, 3);
        // An urgent item from each producer, to be served before every priority 3 item.
        await queue.enqueue(`urgent ${producer}`, 2);
      }),
    );
    const queue = new PriorityQueue(etcd.client, `${p}pq`);
    const served: string[] = [];
    for (let n = 0; n < producers * (perProducer + 1); n++) served.push((await queue.dequeue({ signal: AbortSignal.timeout(10_000) })).valueString);
    expect(served.slice(0, producers).sort()).toEqual(["urgent 0", "urgent 1", "urgent 2"]);
    const rest = served.slice(producers);
    expect(new Set(rest).size).toBe(producers * perProducer);
    for (let producer = 0; producer < producers; producer++) {
      const fromProducer = rest.filter((v) => v.startsWith(`${producer}:`));
      expect(fromProducer).toEqual(Array.from({ length: perProducer }, (_, i) => `${producer}:${String(i).padStart(3, "0")}`));
    }
    expect(await countUnder(`${p}pq/`)).toBe(0n);
  }, 60_000);

  it("gives up a dequeue within a second of its signal", async () => {
    const queue = new PriorityQueue(etcd.client, `${uniquePrefix()}pq`);
    const controller = new AbortController();
    const waiting = track(queue.dequeue({ signal: controller.signal }));
    await sleep(PAUSE_MS);
    expect(waiting.settled).toBe(false);
    const { error, ms } = await abortAndTime(controller, waiting.promise);
    expect(error).toBeInstanceOf(CallCanceledError);
    expect(ms).toBeLessThan(1000);
  });
});

describe("RWMutex", () => {
  it("lets readers share the lock, and a writer exclude readers and writers, under contention", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}counter`, "0");
    let readers = 0;
    let writers = 0;
    const violations: string[] = [];
    const contenders = 6;
    const rounds = 8;
    let writes = 0;
    await Promise.all(
      Array.from({ length: contenders }, async (_, c) => {
        await using client = clientFor(etcd.cluster);
        await using session = await Session.create(client, { ttl: 10 });
        const rw = new RWMutex(session, `${p}rw`);
        for (let round = 0; round < rounds; round++) {
          if ((c + round) % 3 === 0) {
            await rw.lock();
            writers++;
            if (writers > 1 || readers > 0) violations.push(`writer ${c} with ${writers - 1} writers and ${readers} readers`);
            // Read, pause, write: an overlapping holder would lose an increment.
            const value = Number((await client.kv.get(`${p}counter`)).kvs[0]!.valueString);
            await sleep(3);
            await client.kv.put(`${p}counter`, String(value + 1));
            writes++;
            writers--;
            await rw.unlock();
          } else {
            await rw.rLock();
            readers++;
            if (writers > 0) violations.push(`reader ${c} with ${writers} writers`);
            const before = (await client.kv.get(`${p}counter`)).kvs[0]!.valueString;
            await sleep(3);
            if ((await client.kv.get(`${p}counter`)).kvs[0]!.valueString !== before) violations.push(`reader ${c} saw a write while it held the lock`);
            readers--;
            await rw.rUnlock();
          }
        }
      }),
    );
    expect(violations).toEqual([]);
    expect((await etcd.client.kv.get(`${p}counter`)).kvs[0]?.valueString).toBe(String(writes));
    expect(await countUnder(`${p}rw/`)).toBe(0n);
  }, 60_000);

  it("serves in order of arrival: readers share, a reader after a waiting writer waits for it, a writer waits for readers", async () => {
    const p = uniquePrefix();
    const sessions = await Promise.all([0, 1, 2, 3].map(() => Session.create(etcd.client, { ttl: 10 })));
    const [r1, w1, r2, w2] = sessions.map((s) => new RWMutex(s, `${p}rw`));
    await r1!.rLock();
    // A second reader gets in while the first holds (a reader excluding readers would time out here).
    const r0 = new RWMutex(sessions[0]!, `${p}rw`);
    await r0.rLock({ signal: AbortSignal.timeout(10_000) });
    await r0.rUnlock();
    await expect(r1!.rLock()).rejects.toBeInstanceOf(LockedError);
    await expect(r1!.unlock()).rejects.toBeInstanceOf(NotLockedError);

    const writer = track(w1!.lock());
    await waitForCount(`${p}rw/write/`, 1);
    const lateReader = track(r2!.rLock());
    await waitForCount(`${p}rw/read/`, 2);
    await sleep(PAUSE_MS);
    expect([writer.settled, lateReader.settled]).toEqual([false, false]);
    await r1!.rUnlock();
    await writer.promise;
    await sleep(PAUSE_MS);
    expect(lateReader.settled).toBe(false);
    await w1!.unlock();
    await lateReader.promise;

    const secondWriter = track(w2!.lock());
    await waitForCount(`${p}rw/write/`, 1);
    await sleep(PAUSE_MS);
    expect(secondWriter.settled).toBe(false);
    await r2!.rUnlock();
    await secondWriter.promise;
    await w2!.unlock();
    expect(await countUnder(`${p}rw/`)).toBe(0n);
    for (const s of sessions) await s.close();
  });

  it("takes a writer that gives up waiting out of the queue within a second", async () => {
    const p = uniquePrefix();
    const sessions = await Promise.all([0, 1, 2].map(() => Session.create(etcd.client, { ttl: 10 })));
    const [r1, w, r2] = sessions.map((s) => new RWMutex(s, `${p}rw`));
    await r1!.rLock();
    const controller = new AbortController();
    const writer = track(w!.lock({ signal: controller.signal }));
    await waitForCount(`${p}rw/write/`, 1);
    await sleep(PAUSE_MS);
    expect(writer.settled).toBe(false);
    const { error, ms } = await abortAndTime(controller, writer.promise);
    expect(error).toBeInstanceOf(CallCanceledError);
    expect(ms).toBeLessThan(1000);
    expect(await countUnder(`${p}rw/write/`)).toBe(0n);
    // Readers wait for earlier writers: had the writer's key stayed, this would time out.
    await r2!.rLock({ signal: AbortSignal.timeout(10_000) });
    await r2!.rUnlock();
    await r1!.rUnlock();
    for (const s of sessions) await s.close();
  });
});

describe("STM over bytes", () => {
  it("round-trips binary values exactly, reads its own binary writes, and keeps text working", async () => {
    const p = uniquePrefix();
    await etcd.client.kv.put(`${p}stored`, BINARY);
    await etcd.client.kv.put(`${p}text`, "héllo");
    const later = BINARY.slice().reverse();
    const seen = await runStm(etcd.client, async (stm) => {
      const stored = await stm.getBytes(`${p}stored`);
      stm.put(`${p}copy`, stored!);
      const mutable = later.slice();
      stm.put(`${p}later`, mutable);
      mutable.fill(0); // the put took a copy
      stm.put(`${p}fromText`, "ünï");
      return {
        stored: stored && bytes(stored),
        ownWrite: bytes((await stm.getBytes(`${p}later`))!),
        textAsBytes: bytes((await stm.getBytes(`${p}text`))!),
        textWriteAsBytes: bytes((await stm.getBytes(`${p}fromText`))!),
        text: await stm.get(`${p}text`),
        missing: await stm.getBytes(`${p}missing`),
      };
    });
    expect(seen).toEqual({
      stored: BINARY,
      ownWrite: later,
      textAsBytes: new TextEncoder().encode("héllo"),
      textWriteAsBytes: new TextEncoder().encode("ünï"),
      text: "héllo",
      missing: undefined,
    });
    const read = async (key: string) => bytes((await etcd.client.kv.get(`${p}${key}`)).kvs[0]!.value);
    expect(await read("copy")).toEqual(BINARY);
    expect(await read("later")).toEqual(later);
    expect((await etcd.client.kv.get(`${p}fromText`)).kvs[0]!.valueString).toBe("ünï");
    await expect(runStm(etcd.client, async (stm) => stm.put(`${p}x`, 42 as unknown as Bytes))).rejects.toMatchObject({ argument: "stm value" });
  });

  it("keeps a binary counter exact under concurrent increments", async () => {
    const p = uniquePrefix();
    const encode = (n: number) => {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, n);
      return out;
    };
    const decode = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
    // From 0xfe on, the counter's bytes (0xfe, 0xff, then 0x80 and up) are not valid UTF-8: a text round trip would corrupt them.
    await etcd.client.kv.put(`${p}counter`, encode(0xfe));
    const workers = 4;
    const increments = 10;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        await using client = clientFor(etcd.cluster);
        for (let i = 0; i < increments; i++) {
          await runStm(client, async (stm) => stm.put(`${p}counter`, encode(decode((await stm.getBytes(`${p}counter`))!) + 1)));
        }
      }),
    );
    expect(decode((await etcd.client.kv.get(`${p}counter`)).kvs[0]!.value)).toBe(0xfe + workers * increments);
  }, 60_000);
});
