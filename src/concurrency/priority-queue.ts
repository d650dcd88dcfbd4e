import type { EtcdApi } from "../api/keyspace.js";
import type { KeyValue } from "../api/kv.js";
import { compare, op } from "../api/txn.js";
import { type Bytes, describe, toBytes } from "../core/bytes.js";
import { EtcdError, InvalidArgumentError } from "../core/errors.js";
import { checkName, takeFirst } from "./wait.js";

const MAX_PRIORITY = 0xffff;

/**
 * A distributed priority queue on a key prefix, as clientv3's recipe: an item of priority p is the
 * key `<prefix>/ppppp/nnnnnnnnnnnnnnnn` (both zero-padded decimal, n counting up within p), so the
 * first key in key order is the next to serve: the lowest priority number first, and in order of
 * arrival within one priority. Items have no lease.
 */
export class PriorityQueue {
  private readonly prefix: string;

  /** Throws InvalidArgumentError ("priority queue prefix") when `prefix` is not a non-empty string. */
  constructor(
    private readonly client: EtcdApi,
    prefix: string,
  ) {
    this.prefix = `${checkName(prefix, "priority queue prefix")}/`;
  }

  /**
   * Adds `value` with `priority` (0 is served first, 65535 last). Throws InvalidArgumentError
   * ("priority") when `priority` is not an integer from 0 to 65535, ("priority queue value") when
   * `value` is neither a string nor a Uint8Array; rejects with CallCanceledError when `signal` fires
   * (the item may then be in the queue or not), and with EtcdError when a key under the priority's
   * prefix is not a queue item, so no number after it can be found.
   */
  async enqueue(value: Bytes, priority: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new InvalidArgumentError("priority", `must be an integer from 0 to ${MAX_PRIORITY}, got ${describe(priority)}`);
    }
    const bytes = toBytes(value, "priority queue value");
    const band = `${this.prefix}${String(priority).padStart(5, "0")}/`;
    const signal = options.signal;
    for (;;) {
      const last = await this.client.kv.get(band, { prefix: true, sort: { target: "key", order: "descend" }, limit: 1, keysOnly: true, signal });
      const next = last.kvs[0] ? sequenceOf(last.kvs[0], band) + 1n : 0n;
      // Nothing under the band changed since the read, so `next` is still past every key in it (and
      // free): two producers never share a number, and numbers grow in order of arrival.
      const res = await this.client
        .txn()
        .if(compare.modRevision(band, "<", last.header.revision + 1n, { prefix: true }))
        .then(op.put(`${band}${String(next).padStart(16, "0")}`, bytes))
        .commit({ signal });
      if (res.succeeded) return;
    }
  }

  /**
   * Takes the item of the lowest priority number (the oldest among equals), waiting for one while
   * the queue is empty, and resolves with its key-value (`value` as bytes, `valueString` as text).
   * An item goes to exactly one consumer. Rejects with CallCanceledError when `signal` fires while
   * it waits (an item it has claimed by then is still returned, so that none is lost).
   */
  dequeue(options: { signal?: AbortSignal } = {}): Promise<KeyValue> {
    return takeFirst(this.client, this.prefix, "key", options.signal);
  }
}

function sequenceOf(kv: KeyValue, band: string): bigint {
  const digits = kv.keyString.slice(band.length);
  if (!/^\d{16}$/.test(digits)) throw new EtcdError(`${kv.keyString} is not a priority queue item: it ends in no 16-digit number`);
  return BigInt(digits);
}
