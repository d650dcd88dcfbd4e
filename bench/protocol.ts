/** The messages between the orchestrator and its worker processes, and the figures they report. */
import type { Scenario, Timing } from "./scenarios.js";

/** The Node clients under test, each run in worker processes of its own. */
export const NODE_CLIENTS = ["sdk", "sdk-http2", "sdk-gateway", "etcd3", "grpc-js"] as const;
export type NodeClientName = (typeof NODE_CLIENTS)[number];
/** etcd's own Go benchmark tool (clientv3), run by the orchestrator as a process of its own. */
export type ClientName = NodeClientName | "go";
export const ALL_CLIENTS: readonly ClientName[] = [...NODE_CLIENTS, "go"];

export const CLIENT_LABELS: Record<ClientName, string> = {
  sdk: "SDK gRPC",
  "sdk-http2": "SDK HTTP/2",
  "sdk-gateway": "SDK gateway",
  etcd3: "npm etcd3 1.1.2",
  "grpc-js": "raw grpc-js",
  go: "Go benchmark",
};

/** Every figure a run may report; a scenario reports the ones that make sense for it. */
export interface Metrics {
  /** Operations (or watch events delivered) per second. */
  opsPerSec?: number;
  p50Us?: number;
  p99Us?: number;
  /** Client CPU (user + system, all threads) per operation, event or lease renewal. */
  cpuUsPerOp?: number;
  /** Client resident memory at the end of the window (Go: peak). */
  rssMb?: number;
  /** Time to create every watcher / grant and start keeping alive every lease. */
  setupMs?: number;
  /** RSS growth per watcher or lease. */
  kbPerItem?: number;
  /** Client CPU for one keep-alive cycle (renewing every lease once). */
  cpuMsPerCycle?: number;
  /** Failed operations in the window. */
  errors?: number;
  /** Leases that expired although the client was keeping them alive. */
  lost?: number;
}
export type MetricName = keyof Metrics;

/** What a worker is asked to do, passed as its only argument (JSON). */
export type Job =
  | { role: "client"; client: NodeClientName; scenario: Scenario; endpoints: string[]; timing: Timing }
  /** Puts timestamped values to the watch keys, from a process of its own so its CPU is not the watcher's. */
  | { role: "writer"; keys: number; concurrency: number; endpoints: string[]; timing: Timing }
  /** Loads no client: its RSS is the baseline every worker's includes (Node and the harness). */
  | { role: "idle" };

export type ToWorker = { type: "measure" } | { type: "stop" };

export type FromWorker =
  /** A watch worker has created its watchers. */
  | { type: "ready" }
  /** The writer's warm-up is over. */
  | { type: "measuring" }
  /** `window`: the measured interval on the process's monotonic clock (µs), for profiles. */
  | { type: "result"; metrics: Metrics; window: [number, number] }
  | { type: "error"; message: string };
