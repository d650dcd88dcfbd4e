import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, inject } from "vitest";
import { Client, type ClientConfig } from "../src/index.js";
import { EtcdCluster } from "./harness/cluster.js";

/** Starts a throwaway cluster from the binary the global setup provisioned. */
export async function startCluster(size = 1, extraArgs: string[] = []): Promise<EtcdCluster> {
  const version = inject("etcdVersion");
  const noFsync = !version.startsWith("3.4.");
  return EtcdCluster.start({ binary: inject("etcdBinary"), size, extraArgs, noFsync });
}

/**
 * A cluster and a client for the tests of one file: started before the first test, closed after
 * the last. Read `cluster` and `client` inside tests, not at module level.
 */
export function useCluster(size = 1): { readonly cluster: EtcdCluster; readonly client: Client } {
  let cluster: EtcdCluster | undefined;
  let client: Client | undefined;
  beforeAll(async () => {
    cluster = await startCluster(size);
    client = clientFor(cluster);
  });
  afterAll(async () => {
    client?.close();
    await cluster?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useCluster's cluster is only there inside tests");
    return value;
  };
  return {
    get cluster() {
      return started(cluster);
    },
    get client() {
      return started(client);
    },
  };
}

export function clientFor(cluster: EtcdCluster, config: Partial<ClientConfig> = {}): Client {
  return new Client({ endpoints: cluster.endpoints, ...config });
}

/** A key prefix of its own for each test, so tests sharing a cluster never see each other's keys. */
export function uniquePrefix(label = "t"): string {
  return `${label}-${randomBytes(5).toString("hex")}/`;
}

/**
 * Grants a lease through etcd's JSON gateway, so KV tests can attach keys to leases (with IDs of
 * their choosing) independently of the SDK's own lease API.
 */
export async function grantLeaseViaGateway(cluster: EtcdCluster, id: bigint, ttlSeconds: number): Promise<bigint> {
  const res = await fetch(`${cluster.members[0]!.clientUrl}/v3/lease/grant`, {
    method: "POST",
    body: JSON.stringify({ ID: id.toString(), TTL: String(ttlSeconds) }),
  });
  const body = (await res.json()) as { ID?: string; error?: string; message?: string };
  if (!body.ID) throw new Error(`lease grant failed: ${JSON.stringify(body)}`);
  return BigInt(body.ID);
}

/** Bytes as a plain Uint8Array: under Node the SDK hands out Buffers, which toEqual tells apart. */
export function bytes(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}
