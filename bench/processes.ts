/** Worker and tool processes of the orchestrator: started, talked to, and never left behind. */
import { type ChildProcess, execFile, fork } from "node:child_process";
import { rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { FromWorker, Job, ToWorker } from "./protocol.js";
import type { Outcome } from "./workloads.js";

const live = new Set<ChildProcess>();

/** Counts a process among those killed when the orchestrator ends, however it ends. */
export function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

export function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

process.once("exit", killAll);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUILD = join(ROOT, "bench/.build");
const WORKER = join(BUILD, "bench/worker.js");

/**
 * Compiles the worker, the bench clients and the SDK sources they load to JavaScript, so that
 * workers run on plain node as users run the SDK: no TypeScript loader's memory, start-up or
 * function wrappers in the figures.
 */
export async function compileWorker(): Promise<void> {
  await rm(BUILD, { recursive: true, force: true });
  await promisify(execFile)(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "bench/tsconfig.worker.json")]);
  // The compiled SDK must load the top level's packages, as the sources do, not the copies npm
  // etcd3 brought into bench/node_modules; etcd3 itself is still found there, one level up.
  await symlink(join(ROOT, "node_modules"), join(BUILD, "node_modules"), "dir");
}

export interface WorkerOptions {
  /** Write a V8 CPU profile of the worker into this directory. */
  profileDir?: string;
  /** Kill the worker if it has not reported by then. */
  timeoutMs: number;
}

export class WorkerProcess {
  /** Resolves with the worker's result; rejects when it fails, dies or overruns its time. */
  readonly result: Promise<Outcome>;
  private readonly child: ChildProcess;
  private readonly waiting = new Map<FromWorker["type"], () => void>();

  constructor(job: Job, { profileDir, timeoutMs }: WorkerOptions) {
    const execArgv = ["--expose-gc", ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [])];
    this.child = track(fork(WORKER, [JSON.stringify(job)], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] }));
    this.result = new Promise<Outcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`worker gave no result within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.child.on("message", (message: FromWorker) => {
        if (message.type === "result") resolve({ metrics: message.metrics, window: message.window });
        else if (message.type === "error") reject(new Error(message.message));
        else this.waiting.get(message.type)?.();
      });
      this.child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`worker exited with ${signal ?? `code ${code}`} before reporting`));
      });
    });
    // Failures are read through `result` or `next`; an unobserved one must not crash the orchestrator.
    this.result.catch(() => undefined);
  }

  /** Resolves when the worker sends a message of this type; rejects if it fails first. */
  next(type: "ready" | "measuring"): Promise<void> {
    const told = new Promise<void>((resolve) => this.waiting.set(type, resolve));
    return Promise.race([told, this.result.then(() => Promise.reject(new Error(`worker finished without saying ${type}`)))]);
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }

  /** Waits until the process has exited (its CPU profile, if any, is then written). */
  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => this.child.once("exit", () => resolve()));
  }
}
