import type { EtcdApi } from "../api/keyspace.js";
import type { KeyValue } from "../api/kv.js";
import { type Bytes, toBytes } from "../core/bytes.js";
import { checkName, createUnique, takeFirst } from "./wait.js";

/**
 * A distributed FIFO queue on a key prefix, as clientv3's recipe: each item is a key of its own
 * under `<prefix>/`, served in order of creation to any number of producers and consumers. Items
 * have no lease: they wait in etcd until someone takes them.
 */
export class Queue {
  private readonly prefix: string;

  /** Throws InvalidArgumentError ("queue prefix") when `prefix` is not a non-empty string. */
  constructor(
    private readonly client: EtcdApi,
    prefix: string,
  ) {
    this.prefix = `${checkName(prefix, "queue prefix")}/`;
  }

  /**
   * Appends `value` to the queue. Throws InvalidArgumentError ("queue value") when it is neither
   * a string nor a Uint8Array; rejects with CallCanceledError when `signal` fires, and then the
   * item is withdrawn unless a consumer took it already.
   */
  async enqueue(value: Bytes, options: { signal?: AbortSignal } = {}): Promise<void> {
    await createUnique(this.client, this.prefix, toBytes(value, "queue value"), { signal: options.signal });
  }

  /**
   * Takes the oldest item, waiting for one while the queue is empty, and resolves with its
   * key-value (`value` as bytes, `valueString` as text). An item goes to exactly one consumer.
   * Rejects with CallCanceledError when `signal` fires while it waits (an item it has claimed by
   * then is still returned, so that none is lost).
   */
  dequeue(options: { signal?: AbortSignal } = {}): Promise<KeyValue> {
    return takeFirst(this.client, this.prefix, "create", options.signal);
  }
}
