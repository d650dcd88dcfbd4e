/** The scenarios as run inside a worker process, against one client. */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchClient } from "./clients/common.js";
import type { Metrics } from "./protocol.js";
import {
  GET_KEY,
  type LeaseScenario,
  putKey,
  SETUP_CONCURRENCY,
  type Scenario,
  type Timing,
  txnKey,
  VALUE_SIZE,
  watchKey,
  type WatchScenario,
} from "./scenarios.js";
import { cpuSince, Histogram, rssMb } from "./stats.js";

export interface Outcome {
  metrics: Metrics;
  /** The measured interval on the monotonic clock V8's profiler uses, in µs. */
  window: [number, number];
}

/** What the orchestrator tells a watch worker: when to start and stop counting events. */
export interface WatchControl {
  ready(): void;
  measure: Promise<void>;
  stop: Promise<void>;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** RSS after a full GC (workers run with --expose-gc), so that garbage does not count as memory per item. */
export function settledRssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return rssMb();
}

/** Wall-clock ms with sub-ms precision, comparable between processes of one machine. */
const epochMs = (): number => performance.timeOrigin + performance.now();

/** A value whose first 8 bytes carry the time it was written, for watch delivery latency. */
export function stampedValue(): Uint8Array {
  const value = new Uint8Array(VALUE_SIZE);
  new DataView(value.buffer).setFloat64(0, epochMs(), true);
  return value;
}

function readStamp(value: Uint8Array): number {
  return new DataView(value.buffer, value.byteOffset, 8).getFloat64(0, true);
}

/**
 * `concurrency` workers issue `op` back to back; after the warm-up, the window counts the
 * operations that complete in it, their latencies, and the process's CPU.
 */
export async function closedLoop(op: (worker: number) => Promise<unknown>, concurrency: number, timing: Timing, onMeasuring?: () => void): Promise<Outcome> {
  const latencies = new Histogram();
  let measuring = false;
  let done = false;
  let ops = 0;
  let errors = 0;
  let firstError: unknown;
  const worker = async (w: number) => {
    while (!done) {
      const started = performance.now();
      try {
        await op(w);
        if (measuring) {
          latencies.record((performance.now() - started) * 1000);
          ops++;
        }
      } catch (err) {
        firstError ??= err;
        if (measuring) errors++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  await sleep(timing.warmupMs);
  measuring = true;
  onMeasuring?.();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const windowStart = monotonicUs();
  await sleep(timing.durationMs);
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuSince(cpu);
  const window: [number, number] = [windowStart, monotonicUs()];
  const rss = rssMb();
  done = true;
  await Promise.all(workers);
  if (ops === 0) throw new Error(`no operation succeeded in the window: ${String(firstError)}`);
  return {
    metrics: { opsPerSec: ops / seconds, p50Us: latencies.quantile(0.5), p99Us: latencies.quantile(0.99), cpuUsPerOp: cpuUs / ops, rssMb: rss, errors },
    window,
  };
}

/** Watchers on distinct keys; the events come from the writer process while the orchestrator says measure. */
async function watchFanout(client: BenchClient, scenario: WatchScenario, control: WatchControl): Promise<Outcome> {
  const keys = Array.from({ length: scenario.watchers }, (_, i) => watchKey(i));
  const latencies = new Histogram();
  let measuring = false;
  let events = 0;
  const before = settledRssMb();
  const setupStarted = performance.now();
  const watch = await client.watchKeys(keys, (value) => {
    if (!measuring) return;
    events++;
    latencies.record((epochMs() - readStamp(value)) * 1000);
  });
  const setupMs = performance.now() - setupStarted;
  const kbPerItem = ((settledRssMb() - before) * 1024) / scenario.watchers;
  control.ready();
  await control.measure;
  measuring = true;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const windowStart = monotonicUs();
  await control.stop;
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuSince(cpu);
  const window: [number, number] = [windowStart, monotonicUs()];
  const rss = rssMb();
  await watch.close();
  if (events === 0) throw new Error("no watch event arrived in the window");
  return {
    metrics: { setupMs, kbPerItem, opsPerSec: events / seconds, p50Us: latencies.quantile(0.5), p99Us: latencies.quantile(0.99), cpuUsPerOp: cpuUs / events, rssMb: rss },
    window,
  };
}

/** Leases kept alive by the client; the window spans whole renewal cycles after a first one has passed. */
async function leaseKeepAlive(client: BenchClient, scenario: LeaseScenario): Promise<Outcome> {
  const before = settledRssMb();
  const setupStarted = performance.now();
  const kept = await client.keepAliveLeases(scenario.leases, scenario.ttlSeconds, SETUP_CONCURRENCY);
  const setupMs = performance.now() - setupStarted;
  const cycleMs = (scenario.ttlSeconds * 1000) / 3;
  // The first cycle after set-up still carries the grants' tail; measure from the next one.
  await sleep(cycleMs);
  const cpu = process.cpuUsage();
  const windowStart = monotonicUs();
  await sleep(cycleMs * scenario.cycles);
  const cpuUs = cpuSince(cpu);
  const window: [number, number] = [windowStart, monotonicUs()];
  const rss = rssMb();
  const kbPerItem = ((settledRssMb() - before) * 1024) / scenario.leases;
  const lost = await kept.close();
  return {
    metrics: {
      lost,
      setupMs,
      cpuMsPerCycle: cpuUs / 1000 / scenario.cycles,
      cpuUsPerOp: cpuUs / (scenario.cycles * scenario.leases),
      kbPerItem,
      rssMb: rss,
    },
    window,
  };
}

/** Fails the run before measuring anything when an operation does not do what it should. */
async function check(what: string, ok: Promise<boolean>): Promise<void> {
  if (!(await ok)) throw new Error(`warm-up check failed: ${what}`);
}

export async function runScenario(client: BenchClient, scenario: Scenario, timing: Timing, watchControl: WatchControl): Promise<Outcome> {
  const value = randomBytes(VALUE_SIZE);
  switch (scenario.kind) {
    case "put":
      return closedLoop((w) => client.put(putKey(w), value), scenario.concurrency, timing);
    case "get":
      await check(`${GET_KEY} holds ${VALUE_SIZE} bytes`, client.get(GET_KEY, scenario.serializable).then((v) => v?.length === VALUE_SIZE));
      return closedLoop(() => client.get(GET_KEY, scenario.serializable), scenario.concurrency, timing);
    case "txn":
      await check("the txn compare succeeds", client.casPut(txnKey(0), value));
      return closedLoop((w) => client.casPut(txnKey(w), value), scenario.concurrency, timing);
    case "watch":
      return watchFanout(client, scenario, watchControl);
    case "lease":
      return leaseKeepAlive(client, scenario);
  }
}

/** The watch scenario's load: timestamped puts, round robin over the watched keys. */
export function writeWatchedKeys(client: BenchClient, keys: number, concurrency: number, timing: Timing, onMeasuring: () => void): Promise<Outcome> {
  let next = 0;
  return closedLoop(() => client.put(watchKey(next++ % keys), stampedValue()), concurrency, timing, onMeasuring);
}
