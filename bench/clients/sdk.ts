import { type BaseClient, type ClientConfig, compare, type LeaseKeepAlive, op, type WatchObserver } from "../../src/exports.js";
import { type BenchClient, inParallel, revokeAll, withResolvers } from "./common.js";

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
      // One observer for every watcher, the SDK's way for many (README, Watch): no loop, and
      // no promise, per watcher.
      const { promise: allReady, resolve: readyAll, reject: failed } = withResolvers();
      const { promise: allEnded, resolve: endAll } = withResolvers();
      let confirmed = 0;
      let ended = 0;
      let firstError: unknown;
      const settled = () => ++ended === keys.length && endAll();
      const observer: WatchObserver = {
        next({ events }) {
          for (const event of events) onPut(event.kv.value);
        },
        ready: () => ++confirmed === keys.length && readyAll(),
        error(err) {
          firstError ??= err;
          failed(err);
          settled();
        },
        complete: settled,
      };
      const watchers = keys.map((key) => client.watch(key));
      for (const watcher of watchers) watcher.subscribe(observer);
      await allReady;
      return {
        async close() {
          for (const watcher of watchers) watcher.cancel();
          await allEnded;
          if (firstError !== undefined) throw firstError;
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
