/** What is measured: the scenarios, their parameters, and the keys they use. */

export const VALUE_SIZE = 256;

/** Closed loop: `concurrency` workers issue the operation back to back for the measured window. */
export type LoopScenario =
  | { kind: "put"; id: string; concurrency: number }
  | { kind: "get"; id: string; concurrency: number; serializable: boolean }
  | { kind: "txn"; id: string; concurrency: number };

/** `watchers` watchers on distinct keys of one client, fed by a writer in another process. */
export interface WatchScenario {
  kind: "watch";
  id: string;
  watchers: number;
  /** Puts in flight from the writer process. */
  writerConcurrency: number;
}

/** `leases` leases granted and kept alive by one client. */
export interface LeaseScenario {
  kind: "lease";
  id: string;
  leases: number;
  ttlSeconds: number;
  /** Renewal cycles (a third of the TTL each) in the measured window. */
  cycles: number;
}

export type Scenario = LoopScenario | WatchScenario | LeaseScenario;

export interface Timing {
  warmupMs: number;
  durationMs: number;
}

export interface Plan {
  scenarios: Scenario[];
  timing: Timing;
  rounds: number;
}

/** Grants and watcher creations in flight while a client sets up its leases. */
export const SETUP_CONCURRENCY = 256;

const CONCURRENCIES = [1, 16, 256];

export function plan(quick: boolean): Plan {
  const loops: LoopScenario[] = [
    ...CONCURRENCIES.map((c): LoopScenario => ({ kind: "put", id: `put-c${c}`, concurrency: c })),
    ...CONCURRENCIES.map((c): LoopScenario => ({ kind: "get", id: `get-lin-c${c}`, concurrency: c, serializable: false })),
    ...CONCURRENCIES.map((c): LoopScenario => ({ kind: "get", id: `get-ser-c${c}`, concurrency: c, serializable: true })),
    { kind: "txn", id: "txn-c16", concurrency: 16 },
  ];
  const watchSizes = quick ? [1000] : [1000, 10_000];
  const watches = watchSizes.map((n): WatchScenario => ({ kind: "watch", id: `watch-${n / 1000}k`, watchers: n, writerConcurrency: 16 }));
  const leases: LeaseScenario[] = quick
    ? [{ kind: "lease", id: "lease-1k", leases: 1000, ttlSeconds: 6, cycles: 2 }]
    : [
        // A usual TTL: 2,000 renewals a second over one client.
        { kind: "lease", id: "lease-10k", leases: 10_000, ttlSeconds: 15, cycles: 3 },
        // Short TTLs: 5,000 renewals a second, near what this machine's etcd serves on one stream.
        { kind: "lease", id: "lease-10k-ttl6", leases: 10_000, ttlSeconds: 6, cycles: 5 },
      ];
  return {
    scenarios: [...loops, ...watches, ...leases],
    timing: quick ? { warmupMs: 300, durationMs: 1000 } : { warmupMs: 1000, durationMs: 5000 },
    rounds: quick ? 1 : 3,
  };
}

/** One line describing a scenario, for table titles. */
export function describeScenario(s: Scenario): string {
  switch (s.kind) {
    case "put":
      return `put ${VALUE_SIZE} B, concurrency ${s.concurrency}`;
    case "get":
      return `get ${s.serializable ? "serializable" : "linearizable"}, concurrency ${s.concurrency}`;
    case "txn":
      return `txn (compare version > 0, then put ${VALUE_SIZE} B), concurrency ${s.concurrency}`;
    case "watch":
      return `watch: ${s.watchers} watchers on distinct keys of one client, ${s.writerConcurrency} puts in flight from another process`;
    case "lease":
      return `lease keep-alive: ${s.leases} leases, TTL ${s.ttlSeconds} s (renewed every ${s.ttlSeconds / 3} s)`;
  }
}

/** The single key every get reads; the harness writes it before the runs. */
export const GET_KEY = "bench/get";
/** Each txn worker's own key (it must exist for the compare to succeed). */
export const txnKey = (worker: number): string => `bench/txn/${worker}`;
export const putKey = (worker: number): string => `bench/put/${worker}`;
export const watchKey = (index: number): string => `bench/watch/${index}`;
export const BENCH_PREFIX = "bench/";
