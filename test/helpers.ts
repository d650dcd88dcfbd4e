import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { Client, type ClientConfig } from "../src/index.js";
import { EtcdCluster } from "./harness/cluster.js";

/** Starts a throwaway cluster from the binary the global setup provisioned. */
export async function startCluster(size = 1, extraArgs: string[] = []): Promise<EtcdCluster> {
  const version = inject("etcdVersion");
  const noFsync = !version.startsWith("3.4.");
  return EtcdCluster.start({ binary: inject("etcdBinary"), size, extraArgs, noFsync });
}

export function clientFor(cluster: EtcdCluster, config: Partial<ClientConfig> = {}): Client {
  return new Client({ endpoints: cluster.endpoints, ...config });
}

/** A key prefix of its own for each test, so tests sharing a cluster never see each other's keys. */
export function uniquePrefix(label = "t"): string {
  return `${label}-${randomBytes(5).toString("hex")}/`;
}
