/**
 * The benchmark orchestrator: starts etcd (or takes ETCD_ENDPOINTS), runs every (client,
 * scenario) pair in a worker process of its own, several rounds with the client order rotated,
 * and reports medians as tables, JSON and an SVG chart. See bench/README.md.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { renderChart } from "./chart.js";
import { whyUnavailable } from "./clients/index.js";
import { GoBenchmarkUnavailable, goCommand, resolveGoBenchmark, runGoScenario } from "./go-benchmark.js";
import { compileWorker, killAll, WorkerProcess } from "./processes.js";
import { summariseProfileFile } from "./profile.js";
import { ALL_CLIENTS, CLIENT_LABELS, type ClientName, type Metrics, NODE_CLIENTS, type NodeClientName } from "./protocol.js";
import { formatNumber, formatTable, summarise } from "./report.js";
import { type LoopScenario, plan, type Scenario, type Timing, type WatchScenario } from "./scenarios.js";
import { type BenchServer, startServer } from "./server.js";
import type { Outcome } from "./workloads.js";

const USAGE = `usage: node_modules/.bin/tsx bench/run.ts [options]
  --quick              1 round of 1 s per scenario, 1k watchers and leases (a smoke test)
  --clients LIST       comma-separated, from: ${ALL_CLIENTS.join(", ")} (default: all)
  --scenarios LIST     comma-separated scenario ids or prefixes, e.g. put,get-ser-c256,watch (default: all)
  --rounds N           rounds per (client, scenario); medians are reported (default 3, quick 1)
  --duration MS        measured window of the closed-loop and watch scenarios (default 5000)
  --warmup MS          warm-up before each window (default 1000)
  --profile            write a V8 CPU profile of each worker under results/profiles and summarise it
  --out DIR            where latest.json and chart.svg go (default bench/results)
ETCD_ENDPOINTS=host:port,... runs against that cluster instead of starting etcd.`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    clients: { type: "string" },
    scenarios: { type: "string" },
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    profile: { type: "boolean", default: false },
    out: { type: "string", default: fileURLToPath(new URL("./results", import.meta.url)) },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(",").map((s) => s.trim()) as T[];
  const unknown = items.filter((i) => !allowed.includes(i));
  if (unknown.length > 0) throw new Error(`unknown ${what}: ${unknown.join(", ")}\n${USAGE}`);
  return items;
}

const base = plan(flags.quick);
const timing: Timing = {
  warmupMs: flags.warmup ? Number(flags.warmup) : base.timing.warmupMs,
  durationMs: flags.duration ? Number(flags.duration) : base.timing.durationMs,
};
const rounds = flags.rounds ? Number(flags.rounds) : base.rounds;
const filters = flags.scenarios?.split(",").map((s) => s.trim());
const scenarios = base.scenarios.filter((s) => !filters || filters.some((f) => s.id === f || s.id.startsWith(f)));
const clients = list(flags.clients, ALL_CLIENTS, "client");
const profileDir = flags.profile ? join(flags.out, "profiles") : undefined;
/** Set on Ctrl-C: runs cut short then are not failures to report. */
let stopping = false;

/** A run that cannot take longer than its scenario's own timing plus set-up allows. */
function timeoutFor(scenario: Scenario): number {
  return scenario.kind === "watch" || scenario.kind === "lease" ? 600_000 : timing.warmupMs + timing.durationMs + 60_000;
}

async function runWorker(client: NodeClientName, scenario: Scenario, server: BenchServer): Promise<Outcome> {
  const worker = new WorkerProcess({ role: "client", client, scenario, endpoints: server.endpoints, timing }, { profileDir, timeoutMs: timeoutFor(scenario) });
  const outcome = scenario.kind === "watch" ? await feedWatchers(worker, scenario, server) : await worker.result;
  await worker.exited();
  if (profileDir) await reportProfile(worker.pid, client, scenario, outcome.window);
  return outcome;
}

/** The watch scenario: once the watchers exist, a writer process puts, and the watchers count what arrives meanwhile. */
async function feedWatchers(receiver: WorkerProcess, scenario: WatchScenario, server: BenchServer): Promise<Outcome> {
  let writer: WorkerProcess | undefined;
  try {
    await receiver.next("ready");
    writer = new WorkerProcess(
      { role: "writer", keys: scenario.watchers, concurrency: scenario.writerConcurrency, endpoints: server.endpoints, timing },
      { timeoutMs: timeoutFor(scenario) },
    );
    await writer.next("measuring");
    receiver.send({ type: "measure" });
    await writer.result;
    receiver.send({ type: "stop" });
    return await receiver.result;
  } catch (err) {
    receiver.kill();
    throw err;
  } finally {
    // The receiver, having reported, exits by itself: killed, it would not write its CPU profile.
    writer?.kill();
  }
}

/** Summarises the main thread's profile of a worker (V8 names it CPU.<date>.<time>.<pid>.0.<n>.cpuprofile). */
async function reportProfile(pid: number | undefined, client: ClientName, scenario: Scenario, window: [number, number]): Promise<void> {
  const name = (await readdir(profileDir!)).find((f) => f.includes(`.${pid}.0.`) && f.endsWith(".cpuprofile"));
  if (!name) return;
  const summary = await summariseProfileFile(join(profileDir!, name), window);
  const text = `CPU profile of ${CLIENT_LABELS[client]}, ${scenario.id} (${name}), measured window only\n${summary}\n`;
  await writeFile(join(profileDir!, `${scenario.id}-${client}.txt`), text);
  console.log(text);
}

function progress(round: number, scenario: Scenario, client: ClientName, m: Metrics): string {
  const parts = [
    m.setupMs !== undefined ? `set-up ${formatNumber(m.setupMs)} ms` : "",
    m.opsPerSec !== undefined ? `${formatNumber(m.opsPerSec)}/s` : "",
    m.p50Us !== undefined ? `p50 ${formatNumber(m.p50Us)} µs p99 ${formatNumber(m.p99Us)} µs` : "",
    m.cpuMsPerCycle !== undefined ? `${formatNumber(m.cpuMsPerCycle)} ms CPU/cycle` : "",
    `${formatNumber(m.cpuUsPerOp)} µs CPU/op`,
    `RSS ${formatNumber(m.rssMb)} MB`,
    m.errors ? `${m.errors} errors` : "",
  ];
  return `[round ${round + 1}/${rounds}] ${scenario.id.padEnd(13)} ${CLIENT_LABELS[client].padEnd(16)} ${parts.filter(Boolean).join(", ")}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const unavailable = new Map<ClientName, string>();
  for (const client of clients.filter((c): c is NodeClientName => (NODE_CLIENTS as readonly string[]).includes(c))) {
    const reason = await whyUnavailable(client);
    if (reason) unavailable.set(client, reason);
  }
  let goBinary: string | undefined;
  if (clients.includes("go")) {
    try {
      goBinary = await resolveGoBenchmark();
    } catch (err) {
      if (!(err instanceof GoBenchmarkUnavailable)) throw err;
      unavailable.set("go", err.message);
    }
  }
  for (const [client, reason] of unavailable) console.log(`${CLIENT_LABELS[client]}: skipped, ${reason}`);
  const runnable = clients.filter((c) => !unavailable.has(c));

  await compileWorker();
  const idle = await new WorkerProcess({ role: "idle" }, { timeoutMs: 60_000 }).result;
  const idleRssMb = idle.metrics.rssMb!;
  const server = await startServer();
  const shutdown = async (signal: string) => {
    stopping = true;
    console.error(`\n${signal}: stopping workers and etcd`);
    killAll();
    await server.close().catch(() => undefined);
    process.exit(130);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  console.log(`server: ${server.description} at ${server.endpoints.join(", ")}`);
  console.log(`plan: ${scenarios.length} scenarios × ${runnable.length} clients × ${rounds} rounds, windows of ${timing.durationMs} ms after ${timing.warmupMs} ms warm-up\n`);

  const runs = new Map<string, Map<ClientName, Metrics[]>>(scenarios.map((s) => [s.id, new Map()]));
  const failures = new Map<string, Map<ClientName, string>>(scenarios.map((s) => [s.id, new Map()]));
  const goTotals = new Map<string, number>();
  try {
    await server.prepare();
    for (let round = 0; round < rounds; round++) {
      for (const scenario of scenarios) {
        // Rotating the order each round spreads any drift of the shared machine over every client.
        const order = runnable.map((_, i) => runnable[(i + round) % runnable.length]!);
        for (const client of order) {
          if (client === "go" && typeof goCommand(scenario) === "string") continue;
          try {
            let metrics: Metrics;
            if (client === "go") {
              const result = await runGoScenario(goBinary!, server.endpoints, scenario as LoopScenario, timing.durationMs, goTotals.get(scenario.id));
              goTotals.set(scenario.id, result.total);
              metrics = result.metrics;
            } else {
              metrics = (await runWorker(client, scenario, server)).metrics;
            }
            runs.get(scenario.id)!.set(client, [...(runs.get(scenario.id)!.get(client) ?? []), metrics]);
            console.log(progress(round, scenario, client, metrics));
          } catch (err) {
            if (stopping) return;
            const message = err instanceof Error ? err.message : String(err);
            failures.get(scenario.id)!.set(client, message);
            console.log(`[round ${round + 1}/${rounds}] ${scenario.id} ${CLIENT_LABELS[client]}: FAILED ${message.split("\n")[0]}`);
          }
          await server.tidy();
        }
      }
    }
  } finally {
    await server.close();
  }

  const summaries = scenarios.map((scenario) => {
    const skipped = new Map<ClientName, string>();
    for (const client of clients) {
      const notApplicable = client === "go" ? goCommand(scenario) : undefined;
      const reason = unavailable.get(client) ?? (typeof notApplicable === "string" ? notApplicable : undefined);
      if (reason !== undefined) skipped.set(client, reason);
      else if (!runs.get(scenario.id)!.has(client)) skipped.set(client, `every round failed: ${(failures.get(scenario.id)!.get(client) ?? "unknown").split("\n")[0]}`);
    }
    return summarise(scenario, clients, runs.get(scenario.id)!, skipped);
  });
  console.log(`\nRSS includes what every worker process holds before loading a client (Node and the harness): ${formatNumber(idleRssMb)} MB\n`);
  for (const summary of summaries) console.log(`${formatTable(summary)}\n`);

  const seconds = (Date.now() - started) / 1000;
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() };
  await mkdir(flags.out, { recursive: true });
  const report = {
    generatedAt: new Date().toISOString(),
    runSeconds: Math.round(seconds),
    machine,
    server: server.description,
    idleWorkerRssMb: idleRssMb,
    plan: { quick: flags.quick, rounds, timing, goTotals: Object.fromEntries(goTotals) },
    failures: Object.fromEntries([...failures].filter(([, m]) => m.size > 0).map(([id, m]) => [id, Object.fromEntries(m)])),
    scenarios: summaries,
  };
  await writeFile(join(flags.out, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  const title = `etcd clients, ${machine.cores} cores (${machine.cpu}), ${server.description.split(",")[0]}, ${new Date().toISOString().slice(0, 10)}`;
  await writeFile(join(flags.out, "chart.svg"), renderChart(summaries, title));
  console.log(`wrote ${join(flags.out, "latest.json")} and chart.svg; ${Math.round(seconds)} s in all`);
}

try {
  await main();
} catch (err) {
  if (stopping) await new Promise(() => undefined); // the signal handler ends the process
  console.error(err);
  killAll();
  process.exitCode = 1;
}
