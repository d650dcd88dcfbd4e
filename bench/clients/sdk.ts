import { type BaseClient, type ClientConfig, compare, type LeaseKeepAlive, op } from "../../src/api.js";
import { type BenchClient, inParallel, revokeAll } from "./common.js";

export type SdkTransport = "grpc" | "http2" | "gateway";

/** The Client class of the entry point a user of the transport imports. */
export interface SdkEntry {
  Client: { connect(config: ClientConfig): Promise<BaseClient> };
}

export async function connectSdk(entry: SdkEntry, endpoints: string[], transport: SdkTransport): Promise<BenchClient> {
  const client = await entry.Client.connect({ endpoints, transport });
  return {
    async put(key, value) {
      await client.kv.put(key, value);
    },
    async get(key, serializable) {
      return (await client.kv.get(key, { serializable })).kvs[0]?.value;
    },
    async casPut(key, value) {
      const result = await client.txn().if(compare.version(key, ">", 0)).then(op.put(key, value)).commit();
      return result.succeeded;
    },
    async watchKeys(keys, onPut) {
      const watchers = keys.map((key) => client.watch(key));
      const loops = watchers.map(async (watcher) => {
        for await (const { events } of watcher) for (const event of events) onPut(event.kv.value);
      });
      await Promise.all(watchers.map((w) => w.ready));
      return {
        async close() {
          for (const watcher of watchers) watcher.cancel();
          await Promise.all(loops);
        },
      };
    },
    async keepAliveLeases(count, ttlSeconds, concurrency) {
      const kept: LeaseKeepAlive[] = [];
      await inParallel(count, concurrency, async () => {
        const { id } = await client.lease.grant(ttlSeconds);
        kept.push(await client.lease.keepAlive(id));
      });
      return {
        async close() {
          // Each kept alive until its revoke: one expired while the revokes queue is not lost.
          return revokeAll(kept.length, concurrency, (i) => client.lease.revoke(kept[i]!.id).finally(() => kept[i]!.close()));
        },
      };
    },
    async close() {
      client.close();
    },
  };
}
