/** Medians over rounds, the ratios the issue asks for, and the tables printed at the end. */
import { CLIENT_LABELS, type ClientName, type MetricName, type Metrics } from "./protocol.js";
import { describeScenario, type Scenario } from "./scenarios.js";
import { median } from "./stats.js";

export interface ClientSummary {
  client: ClientName;
  label: string;
  /** One entry per round that ran. */
  rounds: Metrics[];
  median: Metrics;
  /** Why the client did not run, when it did not. */
  skipped?: string;
}

export interface Ratio {
  metric: MetricName;
  /** e.g. "SDK gRPC / npm etcd3 1.1.2" */
  of: string;
  value: number;
}

export interface ScenarioSummary {
  id: string;
  description: string;
  scenario: Scenario;
  clients: ClientSummary[];
  ratios: Ratio[];
}

/** Columns per kind of scenario, with the words that fit it. */
function columns(scenario: Scenario): [MetricName, string][] {
  switch (scenario.kind) {
    case "watch":
      return [
        ["setupMs", "create ms"],
        ["kbPerItem", "KB/watcher"],
        ["opsPerSec", "events/s"],
        ["p50Us", "p50 µs"],
        ["p99Us", "p99 µs"],
        ["cpuUsPerOp", "CPU µs/event"],
        ["rssMb", "RSS MB"],
      ];
    case "lease":
      return [
        ["setupMs", "grant+start ms"],
        ["cpuMsPerCycle", "CPU ms/cycle"],
        ["cpuUsPerOp", "CPU µs/renewal"],
        ["kbPerItem", "KB/lease"],
        ["rssMb", "RSS MB"],
        ["lost", "lost (worst)"],
      ];
    default:
      return [
        ["opsPerSec", "ops/s"],
        ["p50Us", "p50 µs"],
        ["p99Us", "p99 µs"],
        ["cpuUsPerOp", "CPU µs/op"],
        ["rssMb", "RSS MB"],
        ["errors", "errors (worst)"],
      ];
  }
}

const METRICS: MetricName[] = ["opsPerSec", "p50Us", "p99Us", "cpuUsPerOp", "rssMb", "setupMs", "kbPerItem", "cpuMsPerCycle", "errors", "lost"];

/** Failures a median would hide when only one round has them: these report the worst round. */
const WORST_OF: ReadonlySet<MetricName> = new Set(["errors", "lost"]);

function medianOf(rounds: Metrics[]): Metrics {
  const result: Metrics = {};
  for (const name of METRICS) {
    const values = rounds.map((r) => r[name]).filter((v): v is number => v !== undefined);
    if (values.length > 0) result[name] = WORST_OF.has(name) ? Math.max(...values) : median(values);
  }
  return result;
}

/** The SDK over each gRPC wire, compared against each baseline. */
const SUBJECTS: ClientName[] = ["sdk", "sdk-http2"];
const BASELINES: ClientName[] = ["etcd3", "grpc-js"];

function ratios(scenario: Scenario, clients: ClientSummary[]): Ratio[] {
  const find = (name: ClientName) => clients.find((c) => c.client === name && !c.skipped && c.rounds.length > 0)?.median;
  const result: Ratio[] = [];
  for (const subjectName of SUBJECTS) {
    const subject = find(subjectName);
    if (!subject) continue;
    const compare = (metric: MetricName, baseline: ClientName) => {
      const a = subject[metric];
      const b = find(baseline)?.[metric];
      if (a !== undefined && b !== undefined && b !== 0) result.push({ metric, of: `${CLIENT_LABELS[subjectName]} / ${CLIENT_LABELS[baseline]}`, value: a / b });
    };
    for (const metric of ["opsPerSec", "cpuUsPerOp", "setupMs", "kbPerItem"] as const) for (const baseline of BASELINES) compare(metric, baseline);
    if ("concurrency" in scenario && scenario.concurrency === 1) compare("p50Us", "grpc-js");
  }
  return result;
}

export function summarise(scenario: Scenario, order: ClientName[], runs: Map<ClientName, Metrics[]>, skipped: Map<ClientName, string>): ScenarioSummary {
  const clients = order.map((client): ClientSummary => {
    const rounds = runs.get(client) ?? [];
    const reason = skipped.get(client);
    return { client, label: CLIENT_LABELS[client], rounds, median: medianOf(rounds), ...(reason !== undefined ? { skipped: reason } : {}) };
  });
  return { id: scenario.id, description: describeScenario(scenario), scenario, clients, ratios: ratios(scenario, clients) };
}

export function formatNumber(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 100 || abs === 0 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const RATIO_WORDS: Partial<Record<MetricName, string>> = {
  opsPerSec: "throughput",
  cpuUsPerOp: "CPU per op",
  setupMs: "set-up time",
  kbPerItem: "memory per item",
  p50Us: "p50 latency",
};

export function formatTable(summary: ScenarioSummary): string {
  const cols = columns(summary.scenario).filter(([name]) => name !== "errors" || summary.clients.some((c) => (c.median.errors ?? 0) > 0));
  const header = ["client", ...cols.map(([, label]) => label)];
  const rows = summary.clients
    .filter((c) => c.skipped === undefined)
    .map((c) => [c.label, ...cols.map(([name]) => formatNumber(c.median[name]))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const rounds = Math.max(0, ...summary.clients.map((c) => c.rounds.length));
  const out = [`## ${summary.id}: ${summary.description} (median of ${rounds} round${rounds === 1 ? "" : "s"})`, line(header), ...rows.map(line)];
  for (const c of summary.clients) if (c.skipped !== undefined) out.push(`${c.label}: skipped, ${c.skipped}`);
  if (summary.ratios.length > 0) {
    out.push(summary.ratios.map((r) => `${RATIO_WORDS[r.metric] ?? r.metric} ${r.of} = ${r.value.toFixed(2)}×`).join("; "));
  }
  return out.join("\n");
}
