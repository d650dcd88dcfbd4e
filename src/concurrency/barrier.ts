import type { EtcdApi } from "../api/keyspace.js";
import { compare, op } from "../api/txn.js";
import { checkName, waitEvent } from "./wait.js";

/**
 * A barrier on one key, as clientv3's recipe: while the key exists, `wait()` blocks; deleting it
 * (`release()`) lets every waiter through at once. The key has no lease, so a barrier outlives the
 * process that held it until someone releases it.
 */
export class Barrier {
  private readonly key: string;

  /** Throws InvalidArgumentError ("barrier key") when `key` is not a non-empty string. */
  constructor(
    private readonly client: EtcdApi,
    key: string,
  ) {
    this.key = checkName(key, "barrier key");
  }

  /** Raises the barrier: creates its key unless it exists already (holding twice is harmless). */
  async hold(options: { signal?: AbortSignal } = {}): Promise<void> {
    // Only if absent, as clientv3 does: a second hold leaves the key, and its revisions, as they were.
    await this.client.txn().if(compare.createRevision(this.key, "=", 0)).then(op.put(this.key, "")).commit({ signal: options.signal });
  }

  /** Lowers the barrier: deletes its key, letting every waiter through. */
  async release(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.client.kv.delete(this.key, { signal: options.signal });
  }

  /**
   * Resolves once the barrier is not held: at once when its key does not exist, else when it is
   * deleted. Rejects with CallCanceledError when `signal` fires.
   */
  async wait(options: { signal?: AbortSignal } = {}): Promise<void> {
    for (;;) {
      const res = await this.client.kv.get(this.key, { keysOnly: true, signal: options.signal });
      if (res.kvs.length === 0) return;
      if (await waitEvent(this.client, this.key, "delete", res.header.revision, { signal: options.signal })) return;
    }
  }
}
