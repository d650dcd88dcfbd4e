// gen/ is committed so that users of the package need neither buf nor ts-proto; that only works
// while it is exactly what `npm run generate` would produce from proto/ today, and while proto/
// stays within the lint rules buf.yaml chose.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bufBin = path.join(repoRoot, "node_modules", ".bin", "buf");
const committedGen = path.join(repoRoot, "gen");

// buf resolves the local ts-proto plugin and the lint/generate configs against the repo root.
function buf(args: string[]): { status: number | null; output: string } {
  const res = spawnSync(bufBin, args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (res.error) throw res.error;
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

/** Every file under dir, as paths relative to it with forward slashes, sorted. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join("/"))
    .sort();
}

describe("proto/ tooling", () => {
  it("passes buf lint", () => {
    const { status, output } = buf(["lint"]);
    expect(status, `buf lint failed:\n${output}`).toBe(0);
  }, 60_000);

  it("has a gen/ identical to a fresh buf generate", () => {
    const outDir = mkdtempSync(path.join(tmpdir(), "etcd-sdk-gen-"));
    try {
      const { status, output } = buf(["generate", "--output", outDir]);
      expect(status, `buf generate failed:\n${output}`).toBe(0);

      // buf.gen.yaml writes to `gen`, which --output puts under outDir.
      const freshGen = path.join(outDir, "gen");
      const fresh = listFiles(freshGen);
      const committed = listFiles(committedGen);
      const committedSet = new Set(committed);
      const freshSet = new Set(fresh);
      const report = {
        missingFromGen: fresh.filter((f) => !committedSet.has(f)),
        extraInGen: committed.filter((f) => !freshSet.has(f)),
        differing: fresh.filter(
          (f) =>
            committedSet.has(f) &&
            !readFileSync(path.join(freshGen, f)).equals(readFileSync(path.join(committedGen, f))),
        ),
      };
      expect(report, "gen/ is stale: run npm run generate").toEqual({ missingFromGen: [], extraInGen: [], differing: [] });
      expect(fresh.length).toBeGreaterThan(0);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 60_000);
});
