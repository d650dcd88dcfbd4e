/**
 * The long robustness run: every fault, several rounds each, on every transport, with longer
 * faults than the short test, then the leak check with --reconnects forced reconnects per
 * transport; writes a table (transport × fault × check) to a markdown page (docs/robustness.md
 * is one), and the rounds' reports as JSON and the histories (with porcupine's visualisation of
 * any that is not linearizable) under robustness/. Exits 1 when a check failed.
 *
 *   npm run robustness -- [--rounds 3] [--transports grpc,http2,gateway] [--faults kill,freeze,...]
 *                         [--fault-ms 8000] [--plant resend-write|watch-late|keepalive-no-hasleader]
 *                         [--target-leads] [--reconnects 1000] [--out robustness/results.md]
 */
import { spawnSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { EtcdCluster } from "../test/harness/cluster.js";
import { etcdVersion, resolveEtcdBinary } from "../test/harness/etcd-binary.js";
import { peerNetworkUnavailable } from "../test/harness/peer-network.js";
import { FAULT_DESCRIPTIONS, FAULTS, type FaultName } from "../test/robustness/faults.js";
import { type Plant, PLANTS } from "../test/robustness/plants.js";
import { artifactPath, CHECK_DESCRIPTIONS, CHECKS, type RoundReport, runRound, SHORT_TIMING, type Transport } from "../test/robustness/round.js";

// Ending on a signal runs the exit handlers that kill etcd and remove the network namespaces.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

const TRANSPORTS: Transport[] = ["grpc", "http2", "gateway"];

function list<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (value === undefined) return [...all];
  const picked = value.split(",").map((s) => s.trim());
  for (const p of picked) if (!all.includes(p as T)) throw new Error(`unknown ${what} ${p}: one of ${all.join(", ")}`);
  return picked as T[];
}

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    transports: { type: "string" },
    faults: { type: "string" },
    "fault-ms": { type: "string", default: "8000" },
    plant: { type: "string" },
    "target-leads": { type: "boolean", default: false },
    reconnects: { type: "string", default: "1000" },
    out: { type: "string", default: "robustness/results.md" },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
const faultMs = Number(values["fault-ms"]);
if (!(faultMs >= 1000)) throw new Error(`--fault-ms must be at least 1000, got ${values["fault-ms"]}`);
const transports = list(values.transports, TRANSPORTS, "transport");
const faults = list(values.faults, FAULTS, "fault");
const plant = values.plant === undefined ? undefined : list<Plant>(values.plant, PLANTS, "plant")[0];
const reconnects = Number(values.reconnects);
if (!Number.isInteger(reconnects) || reconnects < 0) throw new Error(`--reconnects must be a non-negative integer, got ${values.reconnects}`);
const out = values.out;
const artifacts = join("robustness", "artifacts");

const binary = await resolveEtcdBinary(process.env.ETCD_SDK_VERSION);
const version = await etcdVersion(binary);
const noNamespaces = await peerNetworkUnavailable();
await rm(artifacts, { recursive: true, force: true });
await mkdir(artifacts, { recursive: true });
const started = Date.now();
const reports: (RoundReport & { round: number })[] = [];
const skipped: string[] = [];
const timing = { ...SHORT_TIMING, faultMs, afterMs: 3000 };

for (const transport of transports) {
  const cluster = await EtcdCluster.start({
    binary,
    size: 3,
    extraArgs: ["--watch-progress-notify-interval=1s"],
    faultProxies: true,
    peerNamespaces: noNamespaces === undefined,
  });
  try {
    for (const fault of faults) {
      if (fault === "partition" && noNamespaces !== undefined) {
        skipped.push(`${transport} partition: ${noNamespaces}`);
        continue;
      }
      for (let round = 1; round <= rounds; round++) {
        const report = await runRound({ cluster, transport, fault, timing, plant, targetLeads: values["target-leads"], artifact: artifactPath(artifacts, transport, fault, round, plant) });
        reports.push({ ...report, round });
        const failed = CHECKS.filter((c) => report.checks[c].status === "fail");
        console.log(`${transport} ${fault} #${round}: ${failed.length === 0 ? "all checks pass" : `FAILED ${failed.join(", ")}`} (${(report.stats.durationMs / 1000).toFixed(1)} s, ${report.stats.operations} ops)`);
      }
    }
  } finally {
    await cluster.close();
  }
}

/** The leak check (test/robustness/leaks.test.ts) with `reconnects` forced reconnects per transport; its verdict, or why it did not run. */
function leakCheck(): { passed: boolean; summary: string } {
  if (reconnects === 0) return { passed: true, summary: "not run (--reconnects 0)" };
  const leakStarted = Date.now();
  const run = spawnSync("npx", ["vitest", "run", "--project", "grpc", "test/robustness/leaks.test.ts"], {
    env: { ...process.env, LEAK_RECONNECTS: String(reconnects) },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const counts = /vitest: (\d+) passed, (\d+) failed/.exec(run.stdout ?? "");
  const took = `${((Date.now() - leakStarted) / 1000).toFixed(0)} s`;
  const passed = run.status === 0;
  console.log(`leak check: ${passed ? "pass" : "FAILED"} (${took})`);
  if (!passed) console.log(run.stdout);
  const tests = counts ? `${counts[1]} passed, ${counts[2]} failed` : `exit ${run.status}`;
  return { passed, summary: `${reconnects} forced reconnects on each of grpc, http2 and gateway, with a watch and a kept lease open: ${passed ? "pass" : "**FAIL**"} (${tests}, ${took})` };
}
const leaks = leakCheck();

/** The longest any client's reads stalled in the rounds of `transport` and `fault`, in seconds. */
function longestStall(transport: Transport, fault: FaultName): string {
  const stalls = reports.filter((r) => r.transport === transport && r.fault === fault).map((r) => r.checks.available.measuredMs ?? 0);
  return stalls.length === 0 ? "-" : `${(Math.max(...stalls) / 1000).toFixed(1)} s`;
}

/** A table cell: how many rounds the check passed, failed, or could not judge. */
function cell(transport: Transport, fault: FaultName, check: (typeof CHECKS)[number]): string {
  const results = reports.filter((r) => r.transport === transport && r.fault === fault).map((r) => r.checks[check].status);
  if (results.length === 0) return "-";
  const failed = results.filter((s) => s === "fail").length;
  const judged = results.filter((s) => s !== "n/a").length;
  if (judged === 0) return "n/a";
  return failed > 0 ? `**FAIL ${failed}/${judged}**` : `pass ${judged}/${judged}`;
}

const failures = [
  ...reports.flatMap((r) =>
    CHECKS.filter((c) => r.checks[c].status === "fail").map((c) => `- ${r.transport} ${r.fault} (round ${r.round}, member 0 ${r.targetWasLeader ? "was" : "was not"} the leader) ${c}: ${r.checks[c].detail}`),
  ),
  ...skipped.map((s) => `- skipped ${s}`),
];
const lines = [
  `# Robustness`,
  "",
  "How the SDK holds up when an etcd member fails, on each transport. In each round two clients run a mixed workload (put, linearizable and serializable get, txn with a compare, delete) on a 3-member cluster, one of them also watching and keeping a lease alive, while one member is faulted; every call and watch response is recorded and checked against etcd's own history. The clients use the SDK's defaults.",
  "",
  `etcd ${version}, 3 members; ${rounds} round(s) per transport and fault, faults of ${faultMs} ms on member 0 (the first endpoint of the client that keeps the lease and watches${values["target-leads"] ? ", made the leader before each round" : ""}), lease TTL 5 s.`,
  `Peer partitions: ${noNamespaces === undefined ? "network namespaces (a member's peer link cut, packets dropped)" : `not run (${noNamespaces})`}.${plant ? ` Planted bug: ${plant}.` : ""}`,
  `Took ${((Date.now() - started) / 60_000).toFixed(1)} minutes.`,
  "",
  `| transport | fault | ${CHECKS.join(" | ")} |`,
  `| --- | --- | ${CHECKS.map(() => "---").join(" | ")} |`,
  ...transports.flatMap((t) => faults.map((f) => `| ${t} | ${f} | ${CHECKS.map((c) => cell(t, f, c)).join(" | ")} |`)),
  "",
  "## Longest read stall",
  "",
  "The longest any client went without a read answered while the fault was on, worst of the rounds: how long the SDK took to leave the faulted member.",
  "",
  `| transport | ${faults.join(" | ")} |`,
  `| --- | ${faults.map(() => "---").join(" | ")} |`,
  ...transports.map((t) => `| ${t} | ${faults.map((f) => longestStall(t, f)).join(" | ")} |`),
  "",
  "## Faults",
  "",
  ...faults.map((f) => `- ${f}: ${FAULT_DESCRIPTIONS[f]}`),
  "",
  "## Checks",
  "",
  ...CHECKS.map((c) => `- ${c}: ${CHECK_DESCRIPTIONS[c]}`),
  "",
  "## Leaks",
  "",
  `Whether the process holds no more sockets, timers or signal listeners after many forced reconnects than before, and Node printed no warning. ${leaks.summary}.`,
  "",
  "## Failures",
  "",
  ...(failures.length > 0 ? failures : ["None."]),
  "",
];
await mkdir(dirname(out), { recursive: true });
await writeFile(out, lines.join("\n"));
await writeFile(join("robustness", "results.json"), JSON.stringify(reports, null, 2));
console.log(lines.join("\n"));
process.exit(!leaks.passed || reports.some((r) => CHECKS.some((c) => r.checks[c].status === "fail")) ? 1 : 0);
