/**
 * The runtimes test/runtimes/package-lock.json pins (Node 22 and 24, Deno, Bun, workerd): installs
 * them and says where their binaries are. Run directly (`npx tsx test/runtimes/install.ts`), it
 * installs them for scripts/node-versions.sh.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { mustRun } from "../support/run.js";

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const modules = join(repoRoot, "test/runtimes/node_modules");
const lockFile = join(repoRoot, "test/runtimes/package-lock.json");

/** Written into node_modules after a successful `npm ci`: the hash of the lock file it installed. */
const INSTALLED_STAMP = join(modules, ".etcd-sdk-installed");

/**
 * Where each runtime's binary is once installed: in the platform package of the lock file (the
 * linux-x64 glibc builds), where no install script has to put it.
 */
export const RUNTIME_BINARIES = {
  node22: join(modules, "node22/bin/node"),
  node24: join(modules, "node24/bin/node"),
  deno: join(modules, "@deno/linux-x64-glibc/deno"),
  bun: join(modules, "@oven/bun-linux-x64/bin/bun"),
  workerd: join(modules, "@cloudflare/workerd-linux-64/bin/workerd"),
} as const;

/** The names the runtimes are installed under (the keys of package.json's dependencies). */
export type RuntimePackage = "node22" | "node24" | "deno" | "bun" | "workerd";

const lockedPackages = (JSON.parse(readFileSync(lockFile, "utf8")) as { packages: Record<string, { version?: string } | undefined> }).packages;

/** The exact version the lock file pins for a runtime. */
export function lockedVersion(name: RuntimePackage): string {
  const version = lockedPackages[`node_modules/${name}`]?.version;
  if (version === undefined) throw new Error(`test/runtimes/package-lock.json has no ${name}`);
  return version;
}

/**
 * `npm ci` of test/runtimes, unless node_modules already holds what the lock file pins (so that a
 * run on one of these Node binaries does not delete the binary it runs on).
 */
export async function installRuntimes(): Promise<void> {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`test/runtimes pins the linux-x64 builds of its runtimes; this is ${process.platform}-${process.arch}`);
  }
  const lockHash = createHash("sha256").update(await readFile(lockFile)).digest("hex");
  if ((await readFile(INSTALLED_STAMP, "utf8").catch(() => "")) === lockHash) return;
  // Without install scripts: they would move the binaries out of the platform packages.
  await mustRun("npm ci", "npm", ["ci", "--prefix", "test/runtimes", "--no-audit", "--no-fund", "--ignore-scripts"], repoRoot, { timeoutMs: 540_000 });
  await writeFile(INSTALLED_STAMP, lockHash);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await installRuntimes();
