/**
 * etcd's own benchmark tool (tools/benchmark in the go.etcd.io/etcd/v3 module, on clientv3): the
 * Go client's figures against the same server. It runs a fixed number of requests rather than for
 * a fixed time, so a short calibration run sizes the real one to the scenario's duration.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFromGoModule, EtcdUnavailableError, PINNED_ETCD_VERSION } from "../test/harness/etcd-binary.js";
import { track } from "./processes.js";
import type { Metrics } from "./protocol.js";
import { GET_KEY, type LoopScenario, type Scenario, VALUE_SIZE } from "./scenarios.js";

const PACKAGE = "go.etcd.io/etcd/v3/tools/benchmark";
const TIME = "/usr/bin/time";

export class GoBenchmarkUnavailable extends Error {
  override name = "GoBenchmarkUnavailable";
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * GO_BENCHMARK_BIN, else the tool built from its Go module at the pinned etcd version by the test
 * harness's builder, cached next to the etcd it builds (~/.cache/etcd-sdk/etcd-<version>/benchmark).
 */
export async function resolveGoBenchmark(version = PINNED_ETCD_VERSION): Promise<string> {
  const fromEnv = process.env.GO_BENCHMARK_BIN;
  if (fromEnv) {
    if (await isExecutable(fromEnv)) return fromEnv;
    throw new GoBenchmarkUnavailable(`GO_BENCHMARK_BIN=${fromEnv} is not an executable file`);
  }
  try {
    return await buildFromGoModule(version, PACKAGE, "benchmark");
  } catch (err) {
    if (!(err instanceof EtcdUnavailableError)) throw err;
    throw new GoBenchmarkUnavailable(err.message);
  }
}

/** The tool's command for a scenario, or why it has none. */
export function goCommand(scenario: Scenario): string[] | string {
  const sizes = ["--key-size=8", `--val-size=${VALUE_SIZE}`];
  switch (scenario.kind) {
    case "put":
      return ["put", ...sizes];
    case "get":
      return ["range", GET_KEY, `--consistency=${scenario.serializable ? "s" : "l"}`];
    case "txn":
      // The tool's nearest: one put per txn, without the compare.
      return ["txn-put", ...sizes, "--txn-ops=1"];
    default:
      return "the Go tool has no comparable command";
  }
}

function parse(stdout: string, total: number, time: string | undefined): Metrics {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(stdout);
    return match ? Number(match[1]) : Number.NaN;
  };
  const opsPerSec = number(/Requests\/sec:\s+([\d.]+)/);
  if (!Number.isFinite(opsPerSec)) throw new Error(`no Requests/sec in the Go tool's output:\n${stdout.slice(-2000)}`);
  const errorBlock = /Error distribution:\n((?:\s*\[\d+\].*\n?)*)/.exec(stdout)?.[1] ?? "";
  const errors = [...errorBlock.matchAll(/\[(\d+)\]/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  // GNU time: "user system maxrss-KiB".
  const [user, system, maxRssKb] = (time ?? "").trim().split(/\s+/).map(Number);
  return {
    opsPerSec,
    p50Us: number(/^\s*50% in ([\d.]+) secs/m) * 1e6,
    p99Us: number(/^\s*99% in ([\d.]+) secs/m) * 1e6,
    cpuUsPerOp: user !== undefined && system !== undefined ? ((user + system) * 1e6) / total : Number.NaN,
    rssMb: maxRssKb !== undefined ? maxRssKb / 1024 : Number.NaN,
    errors,
  };
}

/** Runs the tool once with `total` requests over one connection, `concurrency` clients sharing it. */
async function runOnce(binary: string, endpoints: string[], scenario: LoopScenario, total: number): Promise<Metrics> {
  const command = goCommand(scenario) as string[];
  const args = [`--endpoints=${endpoints.join(",")}`, "--conns=1", `--clients=${scenario.concurrency}`, "--precise", ...command, `--total=${total}`];
  const timeFile = join(tmpdir(), `etcd-bench-time-${process.pid}-${Date.now()}`);
  // GNU time gives the tool's own CPU and peak RSS, written to a file so the progress bar on stderr cannot mix in.
  const timed = await isExecutable(TIME);
  const child = track(timed ? spawn(TIME, ["-o", timeFile, "-f", "%U %S %M", binary, ...args]) : spawn(binary, args));
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.resume();
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const time = timed ? await readFile(timeFile, "utf8").catch(() => undefined) : undefined;
  await rm(timeFile, { force: true });
  if (code !== 0) throw new Error(`the Go tool exited with ${code}:\n${stdout.slice(-2000)}`);
  return parse(stdout, total, time);
}

/**
 * Runs a scenario for about `durationMs`: `total` from the previous round, or a calibration run
 * now (which also warms the server up). Returns the figures and the total for the next round,
 * sized from this run's rate: a small calibration run underestimates the rate of a long one.
 */
export async function runGoScenario(
  binary: string,
  endpoints: string[],
  scenario: LoopScenario,
  durationMs: number,
  total: number | undefined,
): Promise<{ metrics: Metrics; total: number }> {
  const sized = (opsPerSec: number) => Math.max(scenario.concurrency * 10, Math.round((opsPerSec * durationMs) / 1000));
  if (total === undefined) {
    const probe = Math.max(500, scenario.concurrency * 20);
    total = sized((await runOnce(binary, endpoints, scenario, probe)).opsPerSec!);
  }
  const metrics = await runOnce(binary, endpoints, scenario, total);
  return { metrics, total: sized(metrics.opsPerSec!) };
}
