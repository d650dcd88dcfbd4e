/**
 * Turns the vitest JSON reports of a matrix run (scripts/matrix.sh) into the compatibility page:
 * what is tested and how, then one row per integration test file and transport, one column per
 * etcd version, passed/total in each cell (tests of features newer than that version are skipped,
 * and counted as such).
 *
 * Usage: tsx scripts/matrix-table.ts --out docs/compatibility.md matrix/*.json
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

interface Report {
  testResults: { name: string; status: string; assertionResults: { status: string }[] }[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: "string", default: "matrix/compatibility.md" } },
});

const TRANSPORT_OF_REPORT = /-(grpc|http2|gateway)\.json$/;

/** The reports of one etcd version, one per transport (matrix/<version>-<transport>.json). */
const byVersion = new Map<string, string[]>();
for (const file of positionals) {
  const version = basename(file, ".json").replace(/-(grpc|http2|gateway)$/, "");
  byVersion.set(version, [...(byVersion.get(version) ?? []), file]);
}
const columns = [...byVersion.values()].map((files) => {
  const cells = new Map<string, string>();
  for (const file of files) for (const [row, cell] of readReport(file)) cells.set(row, cell);
  // The version etcd reported, from the first log line of that run (see matrix.sh).
  const log = readFileSync(files[0]!.replace(/\.json$/, ".log"), "utf8");
  return { version: /etcd (\d+\.\d+\.\d+)/.exec(log)?.[1] ?? basename(files[0]!, ".json"), cells };
});

function readReport(file: string): [string, string][] {
  const report = JSON.parse(readFileSync(file, "utf8")) as Report;
  const transport = TRANSPORT_OF_REPORT.exec(file)?.[1] ?? "grpc";
  return report.testResults.map((r) => {
    const passed = r.assertionResults.filter((a) => a.status === "passed").length;
    const skipped = r.assertionResults.filter((a) => a.status === "skipped" || a.status === "pending").length;
    // A suite whose setup failed reports its tests as skipped: it failed all the same.
    const setupFailed = r.status === "failed" && !r.assertionResults.some((a) => a.status === "failed");
    const cell = setupFailed ? `0/${r.assertionResults.length} (setup failed)` : `${passed}/${r.assertionResults.length}${skipped ? ` (${skipped} skipped)` : ""}`;
    return [`${basename(r.name, ".test.ts")} | ${transport}`, cell];
  });
}
columns.sort((a, b) => a.version.localeCompare(b.version, undefined, { numeric: true }));
const rows = [...new Set(columns.flatMap((c) => [...c.cells.keys()]))].sort();
const failed = columns.some((c) => [...c.cells.values()].some((cell) => !cellPassed(cell)));

function cellPassed(cell: string): boolean {
  const [, passed, total, skipped] = /^(\d+)\/(\d+)(?: \((\d+) skipped\))?$/.exec(cell) ?? [];
  return passed !== undefined && Number(passed) + Number(skipped ?? 0) === Number(total);
}

const page = [
  "# Compatibility",
  "",
  "etcd-sdk is tested against etcd 3.4, 3.5, 3.6 and 3.7, over each of its transports: gRPC over",
  "`node:http2` (`http2`, the default of `etcd-sdk`, and `etcd-sdk/http2`), gRPC over @grpc/grpc-js",
  '(`grpc`, `transport: "grpc"`) and etcd\'s HTTP/JSON gateway (`gateway`: `etcd-sdk/web`, or',
  '`transport: "gateway"`).',
  "",
  "Where a server is older than a feature, the SDK says so rather than failing obscurely: a method etcd",
  "added later (downgrade in 3.6, RangeStream in 3.7) fails with `UnsupportedVersionError`, which names",
  "the etcd version it needs, and `kv.iterate` falls back to pages of Range. `rejectOldCluster` (with",
  "`minClusterVersion`, default 3.4) makes `Client.connect` refuse older members up front.",
  "",
  "## Test results",
  "",
  "This page is written by [`scripts/matrix.sh`](../scripts/matrix.sh), which runs the integration",
  "suite against Debian's `etcd-server` (3.4) and etcd 3.5, 3.6 and 3.7 built from their Go modules,",
  `once per transport. This run: ${new Date().toISOString().slice(0, 10)}, Node ${process.versions.node}.`,
  "",
  "Each cell is tests passed / tests in the suite. Suites that only make sense on some transports",
  "have no row for the others. A skipped test is one of a feature newer than that etcd (downgrade",
  "before 3.6, RangeStream before 3.7), one whose harness etcd 3.4 cannot serve (members listening on",
  "a unix socket by path), or one that applies to other transports only: in keepalive over gRPC, how",
  "lease renewals share HTTP requests; in watch-resume over the gateway, leaving a frozen member by",
  "probing the stream, which the gateway cannot do.",
  "",
  `| suite | transport | ${columns.map((c) => `etcd ${c.version}`).join(" | ")} |`,
  `| --- | --- | ${columns.map(() => "---").join(" | ")} |`,
  ...rows.map((row) => `| ${row} | ${columns.map((c) => c.cells.get(row) ?? "-").join(" | ")} |`),
  "",
];
writeFileSync(values.out, page.join("\n"));
console.log(page.join("\n"));
process.exit(failed ? 1 : 0);
