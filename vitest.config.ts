import { defineConfig } from "vitest/config";

/** Suites that run a second time with every client going through etcd's HTTP/JSON gateway. */
const onBothTransports = [
  ...["kv", "txn", "watch", "watch-resume", "lease", "keepalive", "auth", "iterate", "failover"],
  ...["admin", "snapshot", "lockservice", "concurrency", "namespace", "endpoints", "client", "bad-input", "middleware"],
].map((name) => `test/integration/${name}.test.ts`);

/** Suites that run again over gRPC on Node's own HTTP/2 module (transport "http2") instead of grpc-js. */
const overHttp2 = [...onBothTransports, ...["tls", "streams"].map((name) => `test/integration/${name}.test.ts`)];

export default defineConfig({
  test: {
    // Provisions (and if needed builds) etcd once, before any worker starts.
    globalSetup: ["test/harness/global-setup.ts"],
    // Tests spawn, signal and kill etcd processes: child processes are simplest to reason about.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/harness/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "grpc", include: ["test/**/*.test.ts"], provide: { transport: "grpc" } } },
      { extends: true, test: { name: "gateway", include: onBothTransports, provide: { transport: "gateway" } } },
      { extends: true, test: { name: "http2", include: overHttp2, provide: { transport: "http2" } } },
    ],
  },
});
