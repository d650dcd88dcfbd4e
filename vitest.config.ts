import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Provisions (and if needed builds) etcd once, before any worker starts.
    globalSetup: ["test/harness/global-setup.ts"],
    // Tests spawn, signal and kill etcd processes: child processes are simplest to reason about.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/harness/summary-reporter.ts"],
  },
});
