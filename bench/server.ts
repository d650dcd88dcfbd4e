/** The etcd the bench runs against, and the upkeep between runs that keeps it comparable. */
import { EtcdCluster } from "../test/harness/cluster.js";
import { etcdVersion, resolveEtcdBinary } from "../test/harness/etcd-binary.js";
import { Client } from "../src/index.js";
import { BENCH_PREFIX, GET_KEY, txnKey, VALUE_SIZE } from "./scenarios.js";

export interface BenchServer {
  /** host:port of every member. */
  endpoints: string[];
  description: string;
  /** Seeds the keys the scenarios read; compacts and defragments when the bench started the server. */
  prepare(): Promise<void>;
  /** Between runs: compact the history the last run wrote, so no run pays for the ones before it. */
  tidy(): Promise<void>;
  close(): Promise<void>;
}

/** Defragment once the backend file is this large: puts leave hundreds of MB of free pages behind. */
const DEFRAG_ABOVE_BYTES = 256n * 2n ** 20n;

/**
 * ETCD_ENDPOINTS (host:port,...) when set, left as it is apart from the bench's own keys; else a
 * single etcd member started by the test harness on loopback ports with its data on tmpfs.
 */
export async function startServer(): Promise<BenchServer> {
  const external = process.env.ETCD_ENDPOINTS;
  if (external) {
    const endpoints = external.split(",").map((e) => e.trim().replace(/^https?:\/\//, ""));
    return withUpkeep(endpoints, `the cluster at ETCD_ENDPOINTS=${external} (history not compacted by the bench)`, false, async () => undefined);
  }
  const binary = await resolveEtcdBinary();
  const version = await etcdVersion(binary);
  const cluster = await EtcdCluster.start({ binary, size: 1 });
  return withUpkeep(cluster.endpoints, `etcd ${version}, one member started by the test harness (data on tmpfs, --unsafe-no-fsync)`, true, () => cluster.close());
}

async function withUpkeep(endpoints: string[], description: string, owned: boolean, stop: () => Promise<void>): Promise<BenchServer> {
  const admin = await Client.connect({ endpoints });
  let compacted = 0n;
  const tidy = async () => {
    if (!owned) return;
    const { header, dbSize } = await admin.maintenance.status();
    // etcd refuses to compact at a revision already compacted (a run that wrote nothing).
    if (header.revision > compacted) await admin.kv.compact(header.revision, { physical: true });
    compacted = header.revision;
    if (dbSize > DEFRAG_ABOVE_BYTES) await admin.maintenance.defragment();
  };
  return {
    endpoints,
    description,
    async prepare() {
      const value = new Uint8Array(VALUE_SIZE).fill(0x61);
      await admin.kv.put(GET_KEY, value);
      // Enough txn keys for the largest txn concurrency the scenarios use.
      for (let w = 0; w < 256; w++) await admin.kv.put(txnKey(w), value);
      await tidy();
    },
    tidy,
    async close() {
      await admin.kv.delete(BENCH_PREFIX, { prefix: true }).catch(() => undefined);
      admin.close();
      await stop();
    },
  };
}
