/**
 * Every runtime the package claims, each running the smoke suite (smoke.ts) against an etcd of its
 * own: Node 20 (this process's), 22 and 24 through each entry point and transport, Deno and Bun
 * through each entry point, and a Cloudflare worker in workerd through "etcd-sdk/web", bundled as
 * a user would deploy it. The runtimes are npm packages pinned in test/runtimes/package-lock.json,
 * installed here with `npm ci` (without install scripts: their binaries are used where the
 * platform packages put them). The package is built with the repo's own tsc into a temp dir laid
 * out as an installed `etcd-sdk`, so every run resolves it through its exports map.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster } from "../helpers.js";
import { describeRun, mustRun, run } from "../support/run.js";
import { installRuntimes, lockedVersion, RUNTIME_BINARIES } from "./install.js";
import { CHECKS, parseResults, type SmokeConfig } from "./smoke.js";

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const runtimesDir = join(repoRoot, "test/runtimes");

/** An entry point, and the transport the smoke suite asks of it (its default when undefined). */
interface Entry {
  label: string;
  specifier: "etcd-sdk" | "etcd-sdk/http2" | "etcd-sdk/web";
  transport?: SmokeConfig["transport"];
}

const NODE_ENTRY: Entry[] = (["grpc", "http2", "gateway"] as const).map((transport) => ({ label: `etcd-sdk over ${transport}`, specifier: "etcd-sdk", transport }));
const HTTP2_ENTRY: Entry = { label: "etcd-sdk/http2", specifier: "etcd-sdk/http2" };
const WEB_ENTRY: Entry = { label: "etcd-sdk/web", specifier: "etcd-sdk/web" };
const EVERY_ENTRY = [...NODE_ENTRY, HTTP2_ENTRY, WEB_ENTRY];

/** A runtime that runs a driver file as a process, and how. */
interface ProcessRuntime {
  name: string;
  command(driver: string, entry: Entry): { file: string; args: string[]; env?: Record<string, string> };
}

const node = (name: string, file: string): ProcessRuntime => ({ name, command: (driver) => ({ file, args: [driver] }) });

const PROCESS_RUNTIMES: ProcessRuntime[] = [
  node(`Node ${process.versions.node} (this process)`, process.execPath),
  // Under one of them (scripts/node-versions.sh), this process is that Node already.
  ...(["node22", "node24"] as const).filter((name) => lockedVersion(name) !== process.versions.node).map((name) => node(`Node ${lockedVersion(name)}`, RUNTIME_BINARIES[name])),
  {
    name: `Deno ${lockedVersion("deno")}`,
    command: (driver, entry) => ({
      file: RUNTIME_BINARIES.deno,
      // Loading @grpc/grpc-js reads GRPC_* variables; the other entries need the network only.
      args: ["run", "--allow-net=127.0.0.1", ...(entry.specifier === "etcd-sdk" ? ["--allow-env"] : []), driver],
      // Its cache beside the driver rather than in the home directory.
      env: { DENO_DIR: join(dirname(driver), ".deno"), DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }),
  },
  {
    name: `Bun ${lockedVersion("bun")}`,
    // --no-install: the package resolves from node_modules or not at all, never from the registry.
    // No transpiler cache in the home directory.
    command: (driver) => ({ file: RUNTIME_BINARIES.bun, args: ["--no-install", driver], env: { BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", DO_NOT_TRACK: "1" } }),
  },
];

/** A driver: loads one entry point and runs the smoke suite through it against `config`. */
function driverSource(entry: Entry, config: SmokeConfig): string {
  return `import * as sdk from ${JSON.stringify(entry.specifier)};
import { runSmoke } from "./smoke.mjs";
await runSmoke(sdk, ${JSON.stringify(config)}, (line) => console.log(line));
`;
}

/** The worker a user would write: the smoke suite on each request, its config in the query string. */
const WORKER_SOURCE = `import * as sdk from "etcd-sdk/web";
import { runSmoke } from "./smoke.mjs";
export default {
  async fetch(request) {
    const config = JSON.parse(new URL(request.url).searchParams.get("config"));
    const lines = [];
    await runSmoke(sdk, config, (line) => lines.push(line));
    return new Response(lines.join("\\n") + "\\n");
  },
};
`;

/**
 * workerd's config: the bundled worker without nodejs_compat (the web entry needs no Node APIs),
 * listening on a port the kernel picks. workerd refuses connections to non-public addresses unless
 * the worker's outbound network allows them; etcd is on loopback ("local").
 */
const WORKERD_CONFIG = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "smoke", worker = .smokeWorker),
    (name = "internet", network = (allow = ["local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "smoke")],
);
const smokeWorker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2026-11-01",
);
`;

/**
 * The package as installed in `project`: node_modules/etcd-sdk holding the repo's package.json and
 * the build tsconfig.build.json makes of it, and the repo's node_modules as its dependencies.
 */
async function buildPackage(project: string): Promise<void> {
  const installed = join(project, "node_modules/etcd-sdk");
  await mkdir(installed, { recursive: true });
  await copyFile(join(repoRoot, "package.json"), join(installed, "package.json"));
  await symlink(join(repoRoot, "node_modules"), join(installed, "node_modules"), "dir");
  await mustRun("tsc", join(repoRoot, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--outDir", join(installed, "dist")], repoRoot, { timeoutMs: 300_000 });
  // Deno resolves bare specifiers from node_modules when it finds a package.json.
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "etcd-sdk-runtimes-smoke", private: true, type: "module" }));
}

/** The first line workerd writes to its control fd about a socket: the port it listens on. */
async function listeningPort(control: Readable): Promise<number> {
  for await (const line of createInterface({ input: control })) {
    const event = JSON.parse(line) as { event?: string; port?: number };
    if (event.event === "listen" && event.port !== undefined) return event.port;
  }
  throw new Error("workerd closed its control fd without listening");
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Serves the bundled worker in workerd and runs the smoke suite with one request; its output and workerd's log. */
async function runInWorkerd(workerDir: string, config: SmokeConfig): Promise<{ output: string; log: string }> {
  const child = spawn(RUNTIME_BINARIES.workerd, ["serve", "config.capnp", "config", "--control-fd=3"], { cwd: workerDir, stdio: ["ignore", "pipe", "pipe", "pipe"] });
  // A test process that ends meanwhile takes workerd with it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let log = "";
  child.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`workerd exited with ${String(code)} before listening:\n${log}`)));
      listeningPort(child.stdio[3] as Readable).then(resolve, reject);
    });
    const response = await fetch(`http://127.0.0.1:${port}/?config=${encodeURIComponent(JSON.stringify(config))}`, { signal: AbortSignal.timeout(60_000) });
    return { output: await response.text(), log };
  } finally {
    await stop(child);
    process.off("exit", killOnExit);
  }
}

/** A fresh single-member etcd for one run: the smoke suite compacts its history. */
async function withCluster<T>(transport: SmokeConfig["transport"], body: (config: SmokeConfig) => Promise<T>): Promise<T> {
  const cluster = await startCluster(1);
  try {
    return await body({ endpoints: [cluster.members[0]!.clientUrl], transport });
  } finally {
    await cluster.close();
  }
}

function expectEveryCheckPassed(output: string, context: string): void {
  const results = parseResults(output);
  expect(results.map((r) => r.check), context).toEqual([...CHECKS]);
  expect(results.filter((r) => !r.ok), context).toEqual([]);
}

describe.concurrent("the smoke suite in every runtime", () => {
  let work: string;
  let drivers = 0;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "etcd-sdk-runtimes-"));
    await Promise.all([installRuntimes(), buildPackage(work)]);
    // The suite has type imports only, so it compiles to one file with no imports.
    await build({ entryPoints: [join(runtimesDir, "smoke.ts")], outfile: join(work, "smoke.mjs"), format: "esm", target: "es2022", logLevel: "silent" });
    await writeFile(join(work, "worker.mjs"), WORKER_SOURCE);
    await build({
      entryPoints: [join(work, "worker.mjs")],
      outfile: join(work, "worker/worker.js"),
      bundle: true,
      format: "esm",
      // As wrangler bundles a worker; the browser platform fails on any Node built-in.
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2022",
      logLevel: "silent",
    });
    await writeFile(join(work, "worker/config.capnp"), WORKERD_CONFIG);
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const runtime of PROCESS_RUNTIMES) {
    describe(runtime.name, () => {
      for (const entry of EVERY_ENTRY) {
        it(entry.label, async () => {
          const r = await withCluster(entry.transport, async (config) => {
            const driver = join(work, `driver-${++drivers}.mjs`);
            await writeFile(driver, driverSource(entry, config));
            const { file, args, env } = runtime.command(driver, entry);
            return run(file, args, work, { env, timeoutMs: 30_000 });
          });
          const context = describeRun(`${runtime.name} with ${entry.label}`, r);
          expectEveryCheckPassed(r.stdout, context);
          // Exiting on its own says close() left no timer or socket behind.
          expect([r.code, r.signal], context).toEqual([0, null]);
        }, 60_000);
      }
    });
  }

  describe(`workerd ${lockedVersion("workerd")}`, () => {
    it(`${WEB_ENTRY.label}, bundled into a worker`, async () => {
      const { output, log } = await withCluster(undefined, (config) => runInWorkerd(join(work, "worker"), config));
      expectEveryCheckPassed(output, `workerd answered:\n${output}\n--- workerd's log ---\n${log}`);
    }, 60_000);
  });
});
