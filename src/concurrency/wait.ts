import type { EtcdApi } from "../api/keyspace.js";
import type { KeyValue } from "../api/kv.js";

/** The oldest key under `prefix` by creation revision, if any. */
export async function firstCreated(client: EtcdApi, prefix: string, signal?: AbortSignal): Promise<KeyValue | undefined> {
  const res = await client.kv.get(prefix, { prefix: true, sort: { target: "create", order: "ascend" }, limit: 1, signal });
  return res.kvs[0];
}

/**
 * Waits until no key under `prefix` was created before `revision`: the keys ahead of us in a lock
 * or election queue are gone. Waits on the youngest of them each time, as clientv3 does, so that a
 * crowd of waiters does not wake all at once.
 */
export async function waitDeletes(client: EtcdApi, prefix: string, revision: bigint, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const res = await client.kv.get(prefix, {
      prefix: true,
      maxCreateRevision: revision,
      sort: { target: "create", order: "descend" },
      limit: 1,
      signal,
    });
    const ahead = res.kvs[0];
    if (!ahead) return;
    await waitDelete(client, ahead.key, res.header.revision, signal);
  }
}

async function waitDelete(client: EtcdApi, key: Uint8Array, fromRevision: bigint, signal?: AbortSignal): Promise<void> {
  const watcher = client.watch(key, { startRevision: fromRevision + 1n, noPut: true, signal });
  for await (const response of watcher) {
    if (response.events.some((e) => e.type === "delete")) return;
  }
}
