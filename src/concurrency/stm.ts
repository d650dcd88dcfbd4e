import type { EtcdApi } from "../api/keyspace.js";
import { type Bytes, toBytes, utf8 } from "../core/bytes.js";
import { EtcdError } from "../core/errors.js";
import type { KeyValue } from "../api/kv.js";
import { type Compare, compare, type Op, op } from "../api/txn.js";

/**
 * How much an STM transaction sees of others, as in clientv3/concurrency:
 * - "serializable-snapshot" (default): all reads from one snapshot; commits fail if any key read or
 *   written changed since that snapshot.
 * - "serializable": reads after the first from the first read's revision; commits fail if a key read changed.
 * - "repeatable-reads": each key read once; commits fail if a key read changed.
 * - "read-committed": reads see the latest committed values; commits always apply.
 */
export type Isolation = "serializable-snapshot" | "serializable" | "repeatable-reads" | "read-committed";

/** Options of {@link runStm}. */
export interface StmOptions {
  /** What each attempt sees of other writers; default "serializable-snapshot". */
  isolation?: Isolation;
  /** Keys to read in one request before the first attempt runs. */
  prefetch?: string[];
  /** Attempts before giving up with StmConflictError. Default 100. */
  maxAttempts?: number;
  /** Cancels the reads and the commit; the run then rejects with CallCanceledError. */
  signal?: AbortSignal;
}

/** Every attempt of an STM transaction conflicted with other writers. */
export class StmConflictError extends EtcdError {
  override name = "StmConflictError";
}

/** The view of etcd inside one attempt of an STM transaction. */
export interface Stm {
  /** The key's value decoded as UTF-8, or undefined when it does not exist (writes of this attempt included). */
  get(key: string): Promise<string | undefined>;
  /** The key's value as the bytes stored, or undefined when it does not exist (writes of this attempt included). */
  getBytes(key: string): Promise<Uint8Array | undefined>;
  /** The key's modification revision as read (0n when it does not exist). */
  rev(key: string): Promise<bigint>;
  /**
   * Writes `value` when the attempt commits: text as UTF-8, bytes as they are (copied now, so later
   * changes to the array do not leak in). Throws InvalidArgumentError ("stm value") for anything else.
   */
  put(key: string, value: Bytes): void;
  /** Deletes the key when the attempt commits; reads of this attempt then see it absent. */
  delete(key: string): void;
}

class Attempt implements Stm {
  readonly reads = new Map<string, KeyValue | undefined>();
  readonly writes = new Map<string, Bytes | undefined>();
  /** The snapshot revision, fixed by the first read for the serializable levels. */
  snapshot: bigint | undefined;

  constructor(
    private readonly client: EtcdApi,
    private readonly isolation: Isolation,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async get(key: string): Promise<string | undefined> {
    if (this.writes.has(key)) {
      const written = this.writes.get(key);
      return typeof written === "string" || written === undefined ? written : utf8(written);
    }
    return (await this.read(key))?.valueString;
  }

  async getBytes(key: string): Promise<Uint8Array | undefined> {
    if (this.writes.has(key)) {
      const written = this.writes.get(key);
      // A copy (a Buffer's slice would be a view), so that the caller cannot change what this attempt will write.
      return written === undefined ? undefined : typeof written === "string" ? toBytes(written, "stm value") : new Uint8Array(written);
    }
    return (await this.read(key))?.value;
  }

  async rev(key: string): Promise<bigint> {
    return (await this.read(key))?.modRevision ?? 0n;
  }

  put(key: string, value: Bytes): void {
    this.writes.set(key, typeof value === "string" ? value : new Uint8Array(toBytes(value, "stm value")));
  }

  delete(key: string): void {
    this.writes.set(key, undefined);
  }

  async prefetch(keys: string[]): Promise<void> {
    const missing = keys.filter((k) => !this.reads.has(k));
    if (missing.length === 0) return;
    const res = await this.client.txn().then(...missing.map((k) => op.get(k, this.readOptions()))).commit({ signal: this.signal });
    if (!res.succeeded) return;
    this.snapshot ??= res.header.revision;
    missing.forEach((k, i) => this.reads.set(k, res.results[i]!.kvs[0]));
  }

  private async read(key: string): Promise<KeyValue | undefined> {
    if (this.isolation !== "read-committed" && this.reads.has(key)) return this.reads.get(key);
    const res = await this.client.kv.get(key, { ...this.readOptions(), signal: this.signal });
    if (this.isolation !== "repeatable-reads" && this.isolation !== "read-committed") this.snapshot ??= res.header.revision;
    const kv = res.kvs[0];
    this.reads.set(key, kv);
    return kv;
  }

  private readOptions(): { revision?: bigint; serializable?: boolean } {
    const snapshotRead = this.isolation === "serializable-snapshot" || this.isolation === "serializable";
    return snapshotRead && this.snapshot !== undefined ? { revision: this.snapshot, serializable: true } : {};
  }

  /** The conditions under which this attempt may commit. */
  conditions(): Compare[] {
    switch (this.isolation) {
      case "read-committed":
        return [];
      case "serializable-snapshot": {
        // Keys read must be as read (a deleted key compares as revision 0, so "<" would miss a
        // delete); keys only written must not have changed after the snapshot.
        const at = this.snapshot;
        const written = at === undefined ? [] : [...this.writes.keys()].filter((k) => !this.reads.has(k)).map((k) => compare.modRevision(k, "<", at + 1n));
        return [...this.readsUnchanged(), ...written];
      }
      default:
        return this.readsUnchanged();
    }
  }

  private readsUnchanged(): Compare[] {
    return [...this.reads].map(([k, kv]) => compare.modRevision(k, "=", kv?.modRevision ?? 0n));
  }

  operations(): Op[] {
    return [...this.writes].map(([k, v]) => (v === undefined ? op.delete(k) : op.put(k, v)));
  }
}

/**
 * Runs `apply` as a software transactional memory transaction, as clientv3/concurrency's STM:
 * reads go through the Stm, writes are buffered and committed in one etcd transaction that holds
 * only if what was read is unchanged (per the isolation level); on a conflict `apply` runs again.
 * Resolves with what the committed attempt of `apply` returned.
 *
 * @example
 * ```ts
 * import { runStm } from "etcd-sdk";
 *
 * await client.kv.put("example/stm/a", "100");
 * await client.kv.put("example/stm/b", "0");
 * // Moves 10 from a to b atomically; runs again if another writer changed a or b meanwhile.
 * await runStm(client, async (stm) => {
 *   const a = Number(await stm.get("example/stm/a"));
 *   const b = Number(await stm.get("example/stm/b"));
 *   stm.put("example/stm/a", String(a - 10));
 *   stm.put("example/stm/b", String(b + 10));
 * });
 * ```
 *
 * @throws {@link StmConflictError} when all `maxAttempts` attempts conflicted.
 * @throws {@link CallCanceledError} when `signal` fires.
 * @throws What `apply` throws, unchanged; the attempt's writes are then dropped.
 * @throws {@link EndpointError} when no member can be reached; {@link EtcdServerError} when
 * etcd refuses a read or the commit ({@link ErrPermissionDenied}, ...).
 */
export async function runStm<T>(client: EtcdApi, apply: (stm: Stm) => Promise<T>, options: StmOptions = {}): Promise<T> {
  const isolation = options.isolation ?? "serializable-snapshot";
  const attempts = options.maxAttempts ?? 100;
  for (let i = 0; i < attempts; i++) {
    const attempt = new Attempt(client, isolation, options.signal);
    if (options.prefetch) await attempt.prefetch(options.prefetch);
    const result = await apply(attempt);
    const res = await client
      .txn()
      .if(...attempt.conditions())
      .then(...attempt.operations())
      .commit({ signal: options.signal });
    if (res.succeeded) return result;
  }
  throw new StmConflictError(`the STM transaction conflicted ${attempts} times`);
}
