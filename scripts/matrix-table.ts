/**
 * Turns the vitest JSON reports of a matrix run (scripts/matrix.sh) into a Markdown table: one
 * row per integration test file and transport, one column per etcd version, passed/total in each
 * cell (tests of features newer than that version are skipped, and counted as such).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface Report {
  testResults: { name: string; assertionResults: { status: string }[] }[];
}

/** The reports of one etcd version, one per transport (matrix/<version>-<transport>.json). */
const byVersion = new Map<string, string[]>();
for (const file of process.argv.slice(2)) {
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
  const transport = /-(gateway|http2)\.json$/.exec(file)?.[1];
  const label = transport ? ` (${transport})` : "";
  return report.testResults.map((r) => {
    const passed = r.assertionResults.filter((a) => a.status === "passed").length;
    const skipped = r.assertionResults.filter((a) => a.status === "skipped" || a.status === "pending").length;
    return [basename(r.name, ".test.ts") + label, `${passed}/${r.assertionResults.length}${skipped ? ` (${skipped} skipped)` : ""}`];
  });
}
columns.sort((a, b) => a.version.localeCompare(b.version, undefined, { numeric: true }));
const rows = [...new Set(columns.flatMap((c) => [...c.cells.keys()]))].sort();
console.log(`| suite | ${columns.map((c) => `etcd ${c.version}`).join(" | ")} |`);
console.log(`| --- | ${columns.map(() => "---").join(" | ")} |`);
for (const row of rows) console.log(`| ${row} | ${columns.map((c) => c.cells.get(row) ?? "-").join(" | ")} |`);
