/**
 * Figures for the watch-fed cache (createCache), printed as tables:
 * - reads/s from the cache (stale and consistent) next to linearizable and serializable gets;
 * - memory per cached key, at 100,000 keys by default;
 * - lag from a put to the cache applying it (p50/p99), from when the put was sent and from when
 *   its answer came back.
 *
 *   node_modules/.bin/tsx bench/cache.ts [--keys N] [--seconds S] [--transport grpc|http2|gateway]
 *
 * Against ETCD_ENDPOINTS when set (its keys under bench/cache/ are deleted at the end), else one
 * etcd member the test harness starts. The client, the cache and the writer share this process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { Client, type ClientConfig, createCache, op, type WatchCache } from "../src/index.js";
import { BENCH_PREFIX } from "./scenarios.js";
import { startServer } from "./server.js";
import { Histogram } from "./stats.js";

const USAGE = `usage: node_modules/.bin/tsx bench/cache.ts [--keys N] [--seconds S] [--transport grpc|http2|gateway]`;

const { values: flags } = parseArgs({
  options: {
    keys: { type: "string", default: "100000" },
    seconds: { type: "string", default: "5" },
    transport: { type: "string", default: "grpc" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
const KEYS = Number(flags.keys);
const WINDOW_MS = Number(flags.seconds) * 1000;
const TRANSPORT = flags.transport as ClientConfig["transport"];
if (!Number.isSafeInteger(KEYS) || KEYS < 1 || !(WINDOW_MS > 0) || !["grpc", "http2", "gateway"].includes(flags.transport!)) {
  console.error(USAGE);
  process.exit(2);
}

const PREFIX = `${BENCH_PREFIX}cache/`;
/** About what a small config or registry entry holds. */
const VALUE = "v".repeat(64);
const keyOf = (i: number) => `${PREFIX}${String(i).padStart(7, "0")}`;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Heap and buffers once the garbage is gone: what the process holds. */
async function heldBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

async function seed(client: Client): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let start = (next += 100) - 100; start < KEYS; start = (next += 100) - 100) {
      await client.txn().then(...Array.from({ length: Math.min(100, KEYS - start) }, (_, j) => op.put(keyOf(start + j), VALUE))).commit();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** Runs `call` back to back in `concurrency` loops for the window (after a short warm-up); calls a second. */
async function rate(concurrency: number, call: (n: number) => Promise<unknown>): Promise<number> {
  const run = async (ms: number) => {
    let done = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        for (let n = w; performance.now() < end; n += concurrency) {
          await call(n);
          done++;
        }
      }),
    );
    return done;
  };
  await run(Math.min(1000, WINDOW_MS / 5));
  const started = performance.now();
  const done = await run(WINDOW_MS);
  return done / ((performance.now() - started) / 1000);
}

/** Puts in `concurrency` loops for the window; the cache's feed says when it applied each one. */
async function lag(writer: Client, cache: WatchCache, concurrency: number): Promise<{ fromSend: Histogram; fromAnswer: Histogram; puts: number }> {
  const applied = new Map<bigint, number>();
  const feed = cache.changes();
  feed.subscribe({ next: (update) => void applied.set(update.revision, performance.now()), error: () => undefined });
  const sent: { revision: bigint; sentAt: number; answeredAt: number }[] = [];
  const end = performance.now() + WINDOW_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let n = w; performance.now() < end; n += concurrency) {
        const sentAt = performance.now();
        const { header } = await writer.kv.put(keyOf(n % KEYS), VALUE);
        sent.push({ revision: header.revision, sentAt, answeredAt: performance.now() });
      }
    }),
  );
  await cache.waitForRevision(sent.reduce((max, s) => (s.revision > max ? s.revision : max), 0n));
  feed.cancel();
  const fromSend = new Histogram();
  const fromAnswer = new Histogram();
  for (const { revision, sentAt, answeredAt } of sent) {
    const at = applied.get(revision)!;
    fromSend.record((at - sentAt) * 1000);
    // The cache often applies a put before its answer is back: that counts as no lag.
    fromAnswer.record(Math.max(0, at - answeredAt) * 1000);
  }
  return { fromSend, fromAnswer, puts: sent.length };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const server = await startServer();
  const config = { endpoints: server.endpoints, transport: TRANSPORT };
  const client = await Client.connect(config);
  const writer = await Client.connect(config);
  try {
    console.log(`${server.description}; transport ${TRANSPORT}; ${KEYS} keys of ${VALUE.length}-byte values, keys like ${keyOf(0)}`);
    await writer.kv.delete(PREFIX, { prefix: true });
    const seeding = performance.now();
    await seed(writer);
    console.log(`seeded in ${fmt((performance.now() - seeding) / 1000, 1)} s`);

    const before = await heldBytes();
    const listing = performance.now();
    await using cache = await createCache(client, { prefix: PREFIX });
    const listMs = performance.now() - listing;
    const after = await heldBytes();
    console.log(`\ncache of ${cache.size} keys listed in ${fmt(listMs)} ms; heap + buffers grew by ${fmt((after - before) / 2 ** 20, 1)} MiB: ${fmt((after - before) / cache.size)} bytes per key (key ${keyOf(0).length} B + value ${VALUE.length} B of it)`);

    const random = (n: number) => keyOf((n * 7919) % KEYS);
    const reads: [string, number, (n: number) => Promise<unknown>][] = [
      ["cache get (local)", 1, (n) => cache.get(random(n))],
      ["cache list, limit 100 (local)", 1, (n) => cache.list({ key: random(n), rangeEnd: `${PREFIX}\u00ff`, limit: 100 })],
      ["cache get, consistent", 1, (n) => cache.get(random(n), { consistent: true })],
      ["cache get, consistent", 16, (n) => cache.get(random(n), { consistent: true })],
      ["kv.get linearizable", 1, (n) => client.kv.get(random(n))],
      ["kv.get linearizable", 16, (n) => client.kv.get(random(n))],
      ["kv.get serializable", 1, (n) => client.kv.get(random(n), { serializable: true })],
      ["kv.get serializable", 16, (n) => client.kv.get(random(n), { serializable: true })],
    ];
    const rows = [["read", "in flight", "reads/s"]];
    for (const [name, concurrency, call] of reads) rows.push([name, String(concurrency), fmt(await rate(concurrency, call))]);
    console.log(`\n${table(rows)}`);

    const lags = [["puts in flight", "puts", "put sent -> applied p50 ms", "p99 ms", "put answered -> applied p50 ms", "p99 ms"]];
    for (const concurrency of [1, 16]) {
      const { fromSend, fromAnswer, puts } = await lag(writer, cache, concurrency);
      lags.push([String(concurrency), String(puts), fmt(fromSend.quantile(0.5) / 1000, 2), fmt(fromSend.quantile(0.99) / 1000, 2), fmt(fromAnswer.quantile(0.5) / 1000, 2), fmt(fromAnswer.quantile(0.99) / 1000, 2)]);
    }
    console.log(`\n${table(lags)}`);
  } finally {
    await writer.kv.delete(PREFIX, { prefix: true }).catch(() => undefined);
    await Promise.all([client.close(), writer.close()]);
    await server.close();
  }
}

await main();
