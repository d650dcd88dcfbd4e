import { getEventListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, type ClientConfig } from "../../src/index.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { startCluster, uniquePrefix } from "../helpers.js";

/*
 * A client whose connection is reset over and over (a flaky link, a load balancer that drops
 * idle connections) must not gather sockets, timers or listeners: after RECONNECTS forced
 * reconnects, with a watch and a kept lease open the whole time, the process holds no more of
 * them than before. The resets come from a fault proxy in front of the member, as the network
 * would make them; each is followed by a read, which the client retries on a new connection.
 */

/** How many times each transport's connection is reset: 200 in `npm test`, 1,000 in `npm run robustness` (LEAK_RECONNECTS). */
const RECONNECTS = Number(process.env.LEAK_RECONNECTS ?? 200);
const TRANSPORTS: NonNullable<ClientConfig["transport"]>[] = ["grpc", "http2", "gateway"];

/** Node's handles and requests that keep the process busy, by kind (TCPSocketWrap, Timeout, ...). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** The kinds of which `now` holds more than `before`, with both counts. */
function grown(before: Map<string, number>, now: Map<string, number>): string[] {
  return [...now].filter(([kind, n]) => n > (before.get(kind) ?? 0)).map(([kind, n]) => `${kind}: ${before.get(kind) ?? 0} -> ${n}`);
}

/**
 * Waits until nothing has grown since `before`: closing sockets and finishing timers take a few
 * turns of the event loop. Returns what still has, if anything, after `timeoutMs`.
 */
async function settledTo(before: Map<string, number>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const extra = grown(before, activeResources());
    if (extra.length === 0 || Date.now() > deadline) return extra;
    await sleep(50);
  }
}

describe(`${RECONNECTS} forced reconnects`, () => {
  let cluster: EtcdCluster;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  beforeAll(async () => {
    cluster = await startCluster(1, [], undefined, undefined, { faultProxies: true });
    process.on("warning", onWarning);
  });
  afterAll(async () => {
    process.off("warning", onWarning);
    await cluster?.close();
  });

  for (const transport of TRANSPORTS) {
    it(`leave no socket, timer or listener behind over ${transport}`, { timeout: 180_000 }, async () => {
      const proxy = cluster.faults(0);
      await using client = new Client({ endpoints: [cluster.members[0]!.endpoint], transport });
      const p = uniquePrefix();
      const stop = new AbortController();
      const watcher = client.watch(p, { prefix: true, signal: stop.signal });
      const lease = await client.lease.grant(5);
      await using kept = await client.lease.keepAlive(lease.id, { signal: stop.signal });
      const seen: string[] = [];
      await watcher.ready;
      const reading = (async () => {
        for await (const { events } of watcher) for (const event of events) seen.push(event.kv.keyString);
      })();
      /** A write the watcher must see: proof that it is back after the resets. */
      const watchedWrite = async (key: string) => {
        await client.kv.put(`${p}${key}`, "v", { lease: lease.id });
        for (let waited = 0; !seen.includes(`${p}${key}`); waited += 10) {
          if (waited > 10_000) throw new Error(`the watcher did not see ${key} within 10 s`);
          await sleep(10);
        }
      };
      const cycle = async (i: number) => {
        proxy.reset();
        await client.kv.get(`${p}probe`);
        if (i % 100 === 99) await watchedWrite(`after-${i + 1}`);
      };
      // A few cycles first, so that what the client sets up once (codecs, pools) is in the baseline.
      for (let i = 0; i < 5; i++) await cycle(i);
      await watchedWrite("baseline");
      const before = activeResources();
      const signalListeners = getEventListeners(stop.signal, "abort").length;
      const accepted = proxy.acceptedConnections;

      for (let i = 0; i < RECONNECTS; i++) await cycle(i);
      await watchedWrite("end");

      // Every cycle did reconnect: the proxy accepted a connection for each reset at least.
      expect(proxy.acceptedConnections - accepted).toBeGreaterThanOrEqual(RECONNECTS);
      expect(await settledTo(before, 5_000)).toEqual([]);
      expect(getEventListeners(stop.signal, "abort").length).toBe(signalListeners);
      expect(kept.signal.aborted).toBe(false);
      expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
      stop.abort();
      await reading.catch(() => undefined);
    });
  }
});
