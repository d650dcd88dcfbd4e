/**
 * The layers of the source tree, lowest first. A file may import from its own layer and from the
 * layers below it, never from one above: that is what lets a reader take the tree bottom-up, and a
 * wire or a middleware be read, tested and replaced without the client around it.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

const LAYERS: { name: string; holds: (file: string) => boolean }[] = [
  { name: "gen", holds: (f) => f.startsWith("gen/") },
  { name: "src/core", holds: (f) => f.startsWith("src/core/") },
  { name: "middleware", holds: (f) => f.startsWith("middleware/") },
  { name: "src/wire", holds: (f) => f.startsWith("src/wire/") },
  // The in-memory etcd of etcd-sdk/testing, a server behind the Wire interface.
  { name: "src/testing", holds: (f) => f.startsWith("src/testing/") },
  { name: "src/pipeline", holds: (f) => f.startsWith("src/pipeline/") },
  { name: "src/api", holds: (f) => f.startsWith("src/api/") },
  { name: "src/concurrency", holds: (f) => f.startsWith("src/concurrency/") },
  { name: "src/cache", holds: (f) => f.startsWith("src/cache/") },
  { name: "src/client", holds: (f) => f.startsWith("src/client/") },
  { name: "entry points (src/*.ts)", holds: (f) => /^src\/[^/]+\.ts$/.test(f) },
];

/**
 * The wires sit side by side: each may use what src/wire/ shares, never another wire's folder.
 * The in-memory etcd's is one of them.
 */
const WIRE_FOLDERS = ["src/wire/grpc/", "src/wire/http2/", "src/wire/gateway/", "src/testing/"];

function layerOf(file: string): number {
  const index = LAYERS.findIndex((layer) => layer.holds(file));
  if (index < 0) throw new Error(`${file} is in no layer: add its folder to LAYERS`);
  return index;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.relative(repoRoot, path.join(entry.parentPath, entry.name)));
}

/** Every relative module a file imports or re-exports, as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), "utf8");
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]!);
  specifiers.push(...[...text.matchAll(/import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)].map((m) => m[1]!));
  return specifiers.map((spec) => path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), spec)).replace(/\.js$/, ".ts"));
}

const files = [...sourceFiles("src"), ...sourceFiles("middleware")];

describe("the source tree's layers", () => {
  it("has every source file in a layer", () => {
    for (const file of files) expect(() => layerOf(file), file).not.toThrow();
  });

  it("imports only downward (or within a layer)", () => {
    const upward = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => layerOf(target) > layerOf(file))
        .map((target) => `${file} (${LAYERS[layerOf(file)]!.name}) imports ${target} (${LAYERS[layerOf(target)]!.name})`),
    );
    expect(upward).toEqual([]);
  });

  it("keeps each wire out of the others' folders", () => {
    const crossing = files.flatMap((file) => {
      const own = WIRE_FOLDERS.find((folder) => file.startsWith(folder));
      if (!own) return [];
      return importsOf(file)
        .filter((target) => WIRE_FOLDERS.some((folder) => folder !== own && target.startsWith(folder)))
        .map((target) => `${file} imports ${target}`);
    });
    expect(crossing).toEqual([]);
  });

  it("finds the imports it checks", () => {
    // Guards the scan itself: a regex that matched nothing would pass every check above.
    expect(importsOf("src/index.ts")).toContain("src/exports.ts");
    expect(importsOf("src/pipeline/failover.ts").length).toBeGreaterThan(2);
  });
});
