/**
 * Builds the browser bundle of the web entry (src/web.ts): one minified ES module with every
 * dependency inside, for a <script type="module"> or an edge runtime. Run directly, it writes
 * dist/web/etcd-sdk.min.js and prints its size.
 */
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");

export interface WebBundle {
  file: string;
  bytes: number;
  gzipBytes: number;
  /** Every source file and package file the bundle was made from, repo-relative. */
  inputs: string[];
}

export async function buildWebBundle(outdir: string): Promise<WebBundle> {
  const file = join(outdir, "etcd-sdk.min.js");
  const result = await build({
    entryPoints: [join(repoRoot, "src/web.ts")],
    absWorkingDir: repoRoot,
    bundle: true,
    format: "esm",
    // The browser platform fails the build on any import of a Node built-in.
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    metafile: true,
    outfile: file,
    logLevel: "silent",
  });
  const code = await readFile(file);
  return { file, bytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length, inputs: Object.keys(result.metafile.inputs) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bundle = await buildWebBundle(join(repoRoot, "dist/web"));
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`${bundle.file}: ${kb(bundle.bytes)} minified, ${kb(bundle.gzipBytes)} gzipped, from ${bundle.inputs.length} files`);
}
