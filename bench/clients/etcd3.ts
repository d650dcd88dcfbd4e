import { createRequire } from "node:module";
import { type BenchClient, inParallel, revokeAll } from "./common.js";

/*
 * The slice of npm etcd3 1.1.2's API the bench uses, typed here rather than imported: the
 * top-level typecheck covers bench/, and a checkout that has not installed bench/'s own packages
 * (CI's) must still typecheck. Checked against bench/node_modules/etcd3/lib/*.d.ts.
 */
interface Etcd3Watcher {
  on(event: "put", handler: (kv: { value: Buffer }) => void): this;
  cancel(): Promise<void>;
}

interface Etcd3Lease {
  on(event: "keepaliveEstablished", handler: () => void): this;
  on(event: "lost", handler: (err: Error) => void): this;
  revoke(): Promise<void>;
}

interface Etcd3Client {
  put(key: string): { value(value: Buffer): PromiseLike<unknown> };
  get(key: string): { serializable(on: boolean): { buffer(): Promise<Buffer | null> } };
  if(key: string, column: "Version", cmp: ">", value: number): { then(...ops: unknown[]): { commit(): Promise<{ succeeded: boolean }> } };
  watch(): { key(key: string): { create(): Promise<Etcd3Watcher> } };
  lease(ttlSeconds: number): Etcd3Lease;
  close(): void;
}

interface Etcd3Module {
  Etcd3: new (options: { hosts: string[] }) => Etcd3Client;
}

const require = createRequire(import.meta.url);

/** Why etcd3 cannot be loaded, or undefined when it can. */
export function etcd3Missing(): string | undefined {
  try {
    require.resolve("etcd3");
    return undefined;
  } catch {
    return "npm etcd3 is not installed for the bench: run npm install --prefix bench";
  }
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export async function connectEtcd3(endpoints: string[]): Promise<BenchClient> {
  const { Etcd3 } = require("etcd3") as Etcd3Module;
  const client = new Etcd3({ hosts: endpoints.map((e) => (e.includes("://") ? e : `http://${e}`)) });
  // etcd3 connects lazily; the first call waits for the connection, as Client.connect does for the SDK.
  await client.get("bench/connect").serializable(true).buffer();
  return {
    async put(key, value) {
      await client.put(key).value(asBuffer(value));
    },
    async get(key, serializable) {
      return (await client.get(key).serializable(serializable).buffer()) ?? undefined;
    },
    async casPut(key, value) {
      const result = await client.if(key, "Version", ">", 0).then(client.put(key).value(asBuffer(value))).commit();
      return result.succeeded;
    },
    async watchKeys(keys, onPut) {
      const watchers = await Promise.all(keys.map((key) => client.watch().key(key).create()));
      for (const watcher of watchers) watcher.on("put", (kv) => onPut(kv.value));
      return {
        async close() {
          await Promise.all(watchers.map((w) => w.cancel()));
        },
      };
    },
    async keepAliveLeases(count, ttlSeconds, concurrency) {
      const leases: Etcd3Lease[] = [];
      // etcd3 grants on construction and starts keeping alive as soon as the grant is answered.
      await inParallel(count, concurrency, async () => {
        const lease = client.lease(ttlSeconds);
        leases.push(lease);
        await new Promise<void>((resolve, reject) => lease.on("keepaliveEstablished", resolve).on("lost", reject));
      });
      return {
        async close() {
          return revokeAll(leases.length, concurrency, (i) => leases[i]!.revoke());
        },
      };
    },
    async close() {
      client.close();
    },
  };
}
