import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, inject } from "vitest";
import type { ClientMiddleware } from "nice-grpc-common";
import { Client, type ClientConfig, createCache, InvalidArgumentError, op, type WatchCache } from "../src/index.js";
import { type ClientTls, type ClusterOptions, EtcdCluster } from "./harness/cluster.js";
import { MemoryCluster, needsRealEtcd } from "./harness/memory-cluster.js";

/** The etcd release whose behaviour the in-memory etcd reproduces. */
const IN_MEMORY_ETCD_VERSION = "3.7.1";

/** Whether the suite runs against the in-memory etcd of etcd-sdk/testing (the "memory" project). */
const inMemory = (): boolean => inject("transport") === "memory";

/** Whether the etcd under test is at least `minor` ("3.6"), for features newer than 3.4. */
export function etcdAtLeast(minor: string): boolean {
  const [major, min] = (inMemory() ? IN_MEMORY_ETCD_VERSION : inject("etcdVersion")).split(".").map(Number);
  const [wantMajor, wantMinor] = minor.split(".").map(Number);
  return major! > wantMajor! || (major === wantMajor && min! >= wantMinor!);
}

/** The flag that sets etcd's watch progress-notify interval (experimental before 3.6). */
export function progressNotifyFlag(interval: string): string {
  return etcdAtLeast("3.6") ? `--watch-progress-notify-interval=${interval}` : `--experimental-watch-progress-notify-interval=${interval}`;
}

/**
 * Starts a throwaway cluster from the binary the global setup provisioned. In the "memory"
 * project it is an in-memory etcd instead, which stands in for the EtcdCluster (see
 * MemoryCluster): what needs etcd processes skips the test there, saying why.
 */
export async function startCluster(
  size = 1,
  extraArgs: string[] = [],
  clientTls?: ClientTls,
  restore?: ClusterOptions["restore"],
  more: Pick<ClusterOptions, "unixSockets" | "faultProxies" | "peerNamespaces"> = {},
): Promise<EtcdCluster> {
  // The suites type what they get as an EtcdCluster; the stand-in has the part they use of it.
  if (inMemory()) return MemoryCluster.start(size, extraArgs, clientTls, restore, more.unixSockets ?? false) as unknown as EtcdCluster;
  const version = inject("etcdVersion");
  const noFsync = !version.startsWith("3.4.");
  return EtcdCluster.start({ binary: inject("etcdBinary"), size, extraArgs, noFsync, clientTls, restore, ...more });
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

/** The transport the suite runs on (see vitest.config.ts), for a client of a real etcd. */
export function etcdTransport(): NonNullable<ClientConfig["transport"]> {
  const transport = inject("transport");
  if (transport === "memory") return needsRealEtcd("a client config with a transport to reach etcd");
  return transport;
}

/** A client config for the cluster, over the transport the suite runs on (see vitest.config.ts). */
export function configFor(cluster: EtcdCluster, config: Partial<ClientConfig> = {}): ClientConfig {
  return { endpoints: cluster.endpoints, transport: etcdTransport(), ...config };
}

/** A client of the cluster; in the "memory" project, of the in-memory etcd (its config's endpoints, transport and TLS aside). */
export function clientFor(cluster: EtcdCluster, config: Partial<ClientConfig> = {}): Client {
  if (cluster instanceof MemoryCluster) return cluster.etcd.client(config);
  return new Client(configFor(cluster, config));
}

/** Whether the suite runs over etcd's HTTP gateway rather than gRPC. */
export const overGateway = (): boolean => inject("transport") === "gateway";

/** A key prefix of its own for each test, so tests sharing a cluster never see each other's keys. */
export function uniquePrefix(label = "t"): string {
  return `${label}-${randomBytes(5).toString("hex")}/`;
}

/**
 * Grants a lease through etcd's JSON gateway, so KV tests can attach keys to leases (with IDs of
 * their choosing) independently of the SDK's own lease API.
 */
export async function grantLeaseViaGateway(cluster: EtcdCluster, id: bigint, ttlSeconds: number): Promise<bigint> {
  if (cluster instanceof MemoryCluster) {
    // The in-memory etcd has no gateway: a client of its own grants the lease.
    await using client = cluster.etcd.client();
    return (await client.lease.grant(ttlSeconds, { id })).id;
  }
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

/** POSTs to etcd's JSON gateway (as the SDK's admin API would), failing on an error answer. */
export async function gateway(cluster: EtcdCluster, path: string, body: object, token?: string): Promise<Record<string, unknown>> {
  if (cluster instanceof MemoryCluster) needsRealEtcd("etcd's HTTP gateway");
  const res = await fetch(`${cluster.members[0]!.clientUrl}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: token ? { Authorization: token } : {},
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * Turns auth on through the gateway with a root user and a user "alice" who may only read keys
 * under "pub/". Returns a root token for further admin calls.
 */
export async function enableAuth(cluster: EtcdCluster, rootPassword: string, alicePassword: string): Promise<string> {
  if (cluster instanceof MemoryCluster) needsRealEtcd("auth");
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  await gateway(cluster, "/v3/auth/role/add", { name: "root" });
  await gateway(cluster, "/v3/auth/user/add", { name: "root", password: rootPassword });
  await gateway(cluster, "/v3/auth/user/grant", { user: "root", role: "root" });
  await gateway(cluster, "/v3/auth/role/add", { name: "reader" });
  await gateway(cluster, "/v3/auth/role/grant", { name: "reader", perm: { permType: "READ", key: b64("pub/"), range_end: b64("pub0") } });
  await gateway(cluster, "/v3/auth/user/add", { name: "alice", password: alicePassword });
  await gateway(cluster, "/v3/auth/user/grant", { user: "alice", role: "reader" });
  await gateway(cluster, "/v3/auth/enable", {});
  const { token } = await gateway(cluster, "/v3/auth/authenticate", { name: "root", password: rootPassword });
  return token as string;
}

/** Counts calls per method name, as seen on the wire. */
export function callCounter(): { calls: Record<string, number>; middleware: ClientMiddleware } {
  const calls: Record<string, number> = {};
  const middleware = async function* (call, options) {
    const name = call.method.path.split("/").pop()!;
    calls[name] = (calls[name] ?? 0) + 1;
    return yield* call.next(call.request, options);
  } as ClientMiddleware;
  return { calls, middleware };
}

export async function fill(client: Client, p: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    await client.txn().then(...Array.from({ length: Math.min(100, n - i) }, (_, j) => op.put(`${p}${String(i + j).padStart(5, "0")}`, "v"))).commit();
  }
}

/**
 * A cache of the keys under `p` whose watch starts only once `n` keys were written there, after
 * its listing: etcd then replays them to a watcher from an older revision, the case where an etcd
 * before 3.4.31 or 3.5.13 answers a progress request ahead of the events. Resolves once written.
 */
export async function cacheWatchingLate(client: Client, p: string, n: number): Promise<WatchCache> {
  let filled: Promise<void> | undefined;
  const cache = await createCache(
    {
      kv: client.kv,
      watch(key, options) {
        filled = fill(client, p, n);
        const watcher = filled.then(() => client.watch(key, options));
        return {
          subscribe: (observer) => void watcher.then((w) => w.subscribe(observer)),
          requestProgress: () => void watcher.then((w) => w.requestProgress()),
          cancel: () => void watcher.then((w) => w.cancel()),
          progressRequestsUsable: () => watcher.then((w) => w.progressRequestsUsable()),
        };
      },
    },
    { prefix: p },
  );
  await filled;
  return cache;
}

export async function collect(iterable: AsyncIterable<{ keyString: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const kv of iterable) keys.push(kv.keyString);
  return keys;
}

/** The `argument` of the InvalidArgumentError that `f` throws, or undefined when it throws none. */
export function argumentOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.argument;
    throw err;
  }
  return undefined;
}
