/**
 * Turns the vitest JSON reports of a matrix run (scripts/matrix.sh) into a Markdown table: one
 * row per integration test file, one column per etcd version, passed/total in each cell (tests
 * of features newer than that version are skipped, and counted as such).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface Report {
  testResults: { name: string; assertionResults: { status: string }[] }[];
}

const files = process.argv.slice(2);
const columns = files.map((file) => {
  const report = JSON.parse(readFileSync(file, "utf8")) as Report;
  // The version etcd reported, from the first log line of that run (see matrix.sh).
  const log = readFileSync(file.replace(/\.json$/, ".log"), "utf8");
  const version = /etcd (\d+\.\d+\.\d+)/.exec(log)?.[1] ?? basename(file, ".json");
  const cells = new Map(
    report.testResults.map((r) => {
      const passed = r.assertionResults.filter((a) => a.status === "passed").length;
      const skipped = r.assertionResults.filter((a) => a.status === "skipped" || a.status === "pending").length;
      return [basename(r.name, ".test.ts"), `${passed}/${r.assertionResults.length}${skipped ? ` (${skipped} skipped)` : ""}`];
    }),
  );
  return { version, cells };
});
columns.sort((a, b) => a.version.localeCompare(b.version, undefined, { numeric: true }));
const rows = [...new Set(columns.flatMap((c) => [...c.cells.keys()]))].sort();
console.log(`| suite | ${columns.map((c) => `etcd ${c.version}`).join(" | ")} |`);
console.log(`| --- | ${columns.map(() => "---").join(" | ")} |`);
for (const row of rows) console.log(`| ${row} | ${columns.map((c) => c.cells.get(row) ?? "-").join(" | ")} |`);
