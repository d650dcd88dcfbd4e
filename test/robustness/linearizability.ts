import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildGoProgram } from "../harness/etcd-binary.js";
import type { KvHistory } from "./history.js";

const run = promisify(execFile);

/** The Go checker's module (porcupine and the etcd KV model). */
export const CHECKER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), "checker");

let built: Promise<string> | undefined;

/**
 * The checker binary, built once from CHECKER_SOURCE with the local Go toolchain and cached in
 * the user's cache dir under a name that changes with its source, as the harness caches etcd.
 */
export function checkerBinary(): Promise<string> {
  built ??= (async () => {
    const hash = createHash("sha256");
    for (const file of (await readdir(CHECKER_SOURCE)).sort()) hash.update(file).update(await readFile(join(CHECKER_SOURCE, file)));
    const version = hash.digest("hex").slice(0, 16);
    return buildGoProgram(`robustness-checker-${version}`, "checker", "the robustness checker", async (go, output, env) => {
      // go.sum is committed: the build only reads it, and writes nothing into the repository.
      await run(go, ["build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-o", output, "."], { cwd: CHECKER_SOURCE, env: { ...env, GOFLAGS: "" }, maxBuffer: 16 * 1024 * 1024 });
    });
  })();
  return built;
}

export interface LinearizabilityVerdict {
  /** "Unknown": porcupine ran out of time. */
  result: "Ok" | "Illegal" | "Unknown";
  /** Operations checked (serializable reads are not). */
  checked: number;
  unknownOutcomes: number;
  /** The HTML visualisation, written when the history is not linearizable. */
  visualization?: string;
}

/**
 * Checks a history with porcupine. `artifact` is the path (without extension) for the history's
 * JSON and, when it is not linearizable, porcupine's HTML visualisation of it.
 */
export async function checkLinearizable(history: KvHistory, artifact: string, timeoutMs = 60_000): Promise<LinearizabilityVerdict> {
  const binary = await checkerBinary();
  await mkdir(dirname(artifact), { recursive: true });
  const historyPath = `${artifact}.history.json`;
  await writeFile(historyPath, JSON.stringify(history));
  const { stdout } = await run(binary, ["-history", historyPath, "-visualize", `${artifact}.html`, "-timeout", `${timeoutMs}ms`], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as LinearizabilityVerdict;
}
