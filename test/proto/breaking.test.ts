import { execFileSync, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repoRoot = resolve(import.meta.dirname, "../..");

/**
 * The commit whose proto/ is the released wire API to stay compatible with (etcd 3.7.1). Move it
 * forward only on a deliberate etcd proto bump, after reviewing what `buf breaking` reports.
 */
const BASELINE = "45f99253bda4702e51b7dbf7d3f59d8898ad541a";

const baselineAvailable = spawnSync("git", ["cat-file", "-e", `${BASELINE}^{commit}`], { cwd: repoRoot }).status === 0;

describe.skipIf(!baselineAvailable)(`proto/ against the baseline ${BASELINE.slice(0, 8)} (skipped in clones without that commit)`, () => {
  it("changes nothing on the wire or in the JSON mapping (buf breaking, WIRE_JSON)", () => {
    let output = "";
    try {
      execFileSync(resolve(repoRoot, "node_modules/.bin/buf"), ["breaking", "--against", `.git#ref=${BASELINE}`], {
        cwd: repoRoot,
        encoding: "utf8",
        stdio: "pipe",
      });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    expect(output, "proto/ breaks compatibility with the released wire API").toBe("");
  }, 60_000);
});
