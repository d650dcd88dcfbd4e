/**
 * Every TypeScript example of the user docs type-checks, and every runnable one runs to completion
 * against a real etcd with nothing left behind; the tour runs too.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Client } from "../../src/index.js";
import { clientFor, startCluster } from "../helpers.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { collectExamples, type ExampleModule, repoRoot, typeErrors, writeExampleModules } from "./doc-examples.js";

const examples = collectExamples();
let cluster: EtcdCluster;
let modules: ExampleModule[];

beforeAll(async () => {
  cluster = await startCluster(1);
  modules = writeExampleModules(`http://${cluster.endpoints[0]}`);
});
afterAll(() => cluster?.close());

describe("the docs' examples", () => {
  it("are found in the README, the guide and the API reference", () => {
    expect(examples.filter((e) => e.source.startsWith("README.md") || e.source.startsWith("docs/")).length).toBeGreaterThanOrEqual(8);
    expect(examples.filter((e) => e.source.startsWith("src/")).length).toBeGreaterThanOrEqual(10);
  });

  it("type-check", { timeout: 120_000 }, () => {
    expect(typeErrors(modules)).toEqual([]);
  });

  const runnable = examples.map((example, index) => ({ ...example, index })).filter((e) => e.runnable);
  it.each(runnable)("$source runs against etcd", { timeout: 30_000 }, async ({ index }) => {
    const setup = clientFor(cluster);
    // Each example starts from an empty etcd, as its reader would.
    await setup.kv.delete("\0", { fromKey: true });
    await setup.close();
    const client: Client = clientFor(cluster);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const { default: run } = (await import(modules[index]!.file)) as { default: (client: Client) => Promise<void> };
      await run(client);
    } finally {
      log.mockRestore();
      await client.close();
    }
  });

  it("include the tour, which runs against a given etcd", { timeout: 60_000 }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/tour.ts"], {
      cwd: repoRoot,
      env: { ...process.env, ETCD_ENDPOINTS: cluster.endpoints.join(",") },
    });
    expect(stdout).toContain("== put and get");
  });
});
