import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { diffModels, protoModel } from "../../scripts/proto-diff.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const fixtures = join(repoRoot, "test/fixtures/proto-bump");

describe("the proto bump script", () => {
  it("lists every added, removed and changed message, field, enum value and RPC", () => {
    const lines = diffModels(protoModel(join(fixtures, "base")), protoModel(join(fixtures, "next")));
    expect(lines).toEqual([
      "+ message etcdserverpb.CompactionRequest",
      "+ field etcdserverpb.RangeRequest.labels: map<string> string = 10",
      "+ field etcdserverpb.RangeRequest.lease: int64 = 5 (oneof target)",
      "~ field etcdserverpb.RangeRequest.limit: int64 = 3 -> uint64 = 3",
      "- field etcdserverpb.RangeRequest.retired: int32 = 9",
      "+ enum value etcdserverpb.Color.BLUE: 2",
      "+ rpc etcdserverpb.KV/Compact: CompactionRequest -> RangeResponse (request, response)",
      "~ rpc etcdserverpb.KV/Watchish: RangeRequest -> RangeResponse (request, response) -> RangeRequest -> RangeResponse (request, stream response)",
    ]);
  });

  it("finds no difference between proto/ and itself, and reads a source tarball", () => {
    expect(diffModels(protoModel(join(repoRoot, "proto")), protoModel(join(repoRoot, "proto")))).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), "proto-tarball-"));
    try {
      const tarball = join(dir, "etcd-next.tar.gz");
      execFileSync("tar", ["-czf", tarball, "-C", join(fixtures, "next"), "."]);
      let output = "";
      try {
        execFileSync(join(repoRoot, "node_modules/.bin/tsx"), ["scripts/proto-diff.ts", tarball, join(fixtures, "base")], { cwd: repoRoot, encoding: "utf8" });
      } catch (err) {
        // Exit code 1 says there are differences.
        expect((err as { status?: number }).status).toBe(1);
        output = String((err as { stdout?: string }).stdout);
      }
      expect(output).toContain("+ enum value etcdserverpb.Color.BLUE: 2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
