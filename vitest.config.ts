import { defineConfig } from "vitest/config";

/*
 * A suite's folder says which transports it runs on, so a new suite cannot silently run on one:
 * - test/integration/all-transports/: grpc, http2 and gateway (etcd's HTTP/JSON gateway);
 * - test/integration/grpc-transports/: grpc and http2, for what only gRPC has (TLS client
 *   certificates, gRPC streams);
 * - test/robustness/short.test.ts: grpc, http2 and gateway (the checks of the robustness
 *   tooling beside it run once);
 * - everything else (unit tests, proto checks, suites that choose their own clients) runs once.
 * The suites of the API that etcd-sdk/testing's in-memory etcd serves run on it too ("memory"),
 * which proves it behaves as etcd does; what needs etcd processes skips there, saying why.
 */
const allTransports = "test/integration/all-transports/**/*.test.ts";
const grpcTransports = "test/integration/grpc-transports/**/*.test.ts";
const inMemory = ["kv", "txn", "watch", "watch-resume", "lease", "keepalive", "namespace", "concurrency", "recipes"].map((suite) => `test/integration/all-transports/${suite}.test.ts`);
const robustness = "test/robustness/short.test.ts";

/** Provisions (and if needed builds) etcd once, before any worker starts; the in-memory etcd needs none. */
const realEtcd = ["test/harness/global-setup.ts"];

export default defineConfig({
  test: {
    // Tests spawn, signal and kill etcd processes: child processes are simplest to reason about.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/harness/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "grpc", include: ["test/**/*.test.ts"], globalSetup: realEtcd, provide: { transport: "grpc" } } },
      { extends: true, test: { name: "http2", include: [allTransports, grpcTransports, robustness], globalSetup: realEtcd, provide: { transport: "http2" } } },
      { extends: true, test: { name: "gateway", include: [allTransports, robustness], globalSetup: realEtcd, provide: { transport: "gateway" } } },
      { extends: true, test: { name: "memory", include: inMemory, provide: { transport: "memory" } } },
    ],
  },
});
