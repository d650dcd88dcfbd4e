/**
 * The benchmark tables of bench/RESULTS.md from a run's JSON: `tsx bench/readme.ts [results.json]` (default
 * bench/results/latest.json) prints them as Markdown, so that a new run's figures reach RESULTS.md
 * without copying numbers by hand.
 */
import { readFileSync } from "node:fs";
import { CLIENT_LABELS, type ClientName, type Metrics } from "./protocol.js";
import { formatNumber, type ScenarioSummary } from "./report.js";

interface Results {
  scenarios: ScenarioSummary[];
}

const file = process.argv[2] ?? new URL("results/latest.json", import.meta.url).pathname;
const results = JSON.parse(readFileSync(file, "utf8")) as Results;
const byId = new Map(results.scenarios.map((s) => [s.id, s]));

const medianOf = (scenario: ScenarioSummary, client: ClientName): Metrics | undefined =>
  scenario.clients.find((c) => c.client === client && c.skipped === undefined && c.rounds.length > 0)?.median;
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? "–" : `${(a / b).toFixed(2)}×`);
const row = (cells: string[]): string => `| ${cells.join(" | ")} |`;

/** A table of closed-loop scenarios side by side: ops/s · p50 / p99 µs · CPU µs/op per cell, and the ratios. */
function closedLoop(title: string, ids: string[]): string {
  const scenarios = ids.map((id) => byId.get(id)).filter((s): s is ScenarioSummary => s !== undefined);
  if (scenarios.length === 0) return "";
  const clients = scenarios[0]!.clients.filter((c) => c.skipped === undefined);
  const lines = [`${title}; each cell: ops/s · p50 / p99 µs · CPU µs/op`, "", row(["client", ...scenarios.map((s) => s.id)]), row(["---", ...scenarios.map(() => "---")])];
  for (const { client, label } of clients) {
    lines.push(
      row([
        label,
        ...scenarios.map((s) => {
          const m = medianOf(s, client);
          return m ? `${formatNumber(m.opsPerSec)} · ${formatNumber(m.p50Us)} / ${formatNumber(m.p99Us)} · ${formatNumber(m.cpuUsPerOp)}` : "–";
        }),
      ]),
    );
  }
  const c1 = scenarios.filter((s) => "concurrency" in s.scenario && s.scenario.concurrency === 1);
  for (const subject of ["sdk", "sdk-http2"] as const) {
    if (!scenarios.some((s) => medianOf(s, subject))) continue;
    const name = CLIENT_LABELS[subject];
    for (const [baseline, label] of [
      ["etcd3", "etcd3"],
      ["grpc-js", "raw"],
    ] as const) {
      lines.push(
        row([
          `${name} / ${label}, ops/s · CPU`,
          ...scenarios.map((s) => {
            const [a, b] = [medianOf(s, subject), medianOf(s, baseline)];
            return `${ratio(a?.opsPerSec, b?.opsPerSec)} · ${ratio(a?.cpuUsPerOp, b?.cpuUsPerOp)}`;
          }),
        ]),
      );
    }
    if (c1.length > 0) lines.push(row([`${name} / raw, p50`, ...scenarios.map((s) => (c1.includes(s) ? ratio(medianOf(s, subject)?.p50Us, medianOf(s, "grpc-js")?.p50Us) : ""))]));
  }
  return lines.join("\n");
}

/** One row per (scenario, client) with the given columns. */
function perClient(title: string, ids: string[], first: string, columns: [string, (m: Metrics) => string][]): string {
  const lines = [title, "", row([first, "client", ...columns.map(([h]) => h)]), row(["---", "---", ...columns.map(() => "---")])];
  for (const id of ids) {
    const scenario = byId.get(id);
    if (!scenario) continue;
    const key = scenario.scenario.kind === "watch" ? `${scenario.scenario.watchers / 1000}k` : scenario.scenario.kind === "lease" ? `${scenario.scenario.ttlSeconds} s` : id;
    for (const { client, label } of scenario.clients.filter((c) => c.skipped === undefined)) {
      const m = medianOf(scenario, client);
      if (m) lines.push(row([key, label, ...columns.map(([, cell]) => cell(m))]));
    }
  }
  return lines.join("\n");
}

const ms = (us: number | undefined) => formatNumber(us === undefined ? undefined : us / 1000);

console.log(
  [
    closedLoop("Put", ["put-c1", "put-c16", "put-c256"]),
    closedLoop("Linearizable get", ["get-lin-c1", "get-lin-c16", "get-lin-c256"]),
    closedLoop("Serializable get", ["get-ser-c1", "get-ser-c16", "get-ser-c256"]),
    closedLoop("Compare-and-swap txn, 16 in flight (Go: `txn-put`, without the compare)", ["txn-c16"]),
    perClient("Watch: watchers on distinct keys of one client; a writer process puts 16 at a time; delivery is from the put's timestamp to the event's arrival.", ["watch-1k", "watch-10k"], "watchers", [
      ["create ms", (m) => formatNumber(m.setupMs)],
      ["KB/watcher", (m) => formatNumber(m.kbPerItem)],
      ["events/s", (m) => formatNumber(m.opsPerSec)],
      ["p50 / p99 delivery ms", (m) => `${ms(m.p50Us)} / ${ms(m.p99Us)}`],
      ["CPU µs/event", (m) => formatNumber(m.cpuUsPerOp)],
      ["RSS MB", (m) => formatNumber(m.rssMb)],
    ]),
    perClient("Leases: 10,000 leases granted (256 in flight) and kept alive by the client; CPU per renewal cycle (every lease renewed once); lost: leases etcd expired although the client was keeping them alive, in the worst round.", ["lease-10k", "lease-10k-ttl6"], "TTL", [
      ["grant+start ms", (m) => formatNumber(m.setupMs)],
      ["CPU ms/cycle", (m) => formatNumber(m.cpuMsPerCycle)],
      ["KB/lease", (m) => formatNumber(m.kbPerItem)],
      ["lost", (m) => formatNumber(m.lost)],
      ["RSS MB", (m) => formatNumber(m.rssMb)],
    ]),
  ]
    .filter(Boolean)
    .join("\n\n"),
);
