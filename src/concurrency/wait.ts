import type { EtcdApi } from "../api/keyspace.js";
import type { CallOptions, KeyValue } from "../api/kv.js";
import { compare, op } from "../api/txn.js";
import { type Bytes, describe } from "../core/bytes.js";
import { InvalidArgumentError } from "../core/errors.js";

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
    await waitEvent(client, ahead.key, "delete", res.header.revision, { signal });
  }
}

/**
 * Waits for the first `type` event on `key` (or, with `prefix`, on any key under it) after
 * `revision`, and resolves with the key as the event left it. Resolves with undefined when the
 * watch ended without one, so callers look again rather than trust a silent end. Rejects with
 * CallCanceledError when `signal` fires.
 */
export async function waitEvent(
  client: EtcdApi,
  key: Bytes,
  type: "put" | "delete",
  revision: bigint,
  options: { prefix?: boolean; signal?: AbortSignal } = {},
): Promise<KeyValue | undefined> {
  const watcher = client.watch(key, {
    prefix: options.prefix,
    startRevision: revision + 1n,
    noPut: type === "delete",
    noDelete: type === "put",
    signal: options.signal,
  });
  for await (const response of watcher) {
    const event = response.events.find((e) => e.type === type);
    if (event) return event.kv;
  }
  return undefined;
}

/**
 * Creates a key of a fresh random name under `prefix` (only if absent, so two writers can never
 * share one), and resolves with it and the revision that created it. When the create fails or is
 * aborted its outcome is unknown, so the key is deleted before the error is rethrown: an abandoned
 * key would otherwise hold up (or, in a queue, be mistaken for) a live participant.
 */
export async function createUnique(
  client: EtcdApi,
  prefix: string,
  value: Bytes,
  options: { lease?: bigint; signal?: AbortSignal } = {},
): Promise<{ key: string; revision: bigint }> {
  for (;;) {
    const key = `${prefix}${randomName()}`;
    try {
      const res = await client
        .txn()
        .if(compare.createRevision(key, "=", 0))
        .then(op.put(key, value, { lease: options.lease }))
        .commit({ signal: options.signal });
      if (res.succeeded) return { key, revision: res.header.revision };
    } catch (err) {
      await cleanUp((cleanup) => client.kv.delete(key, cleanup).then(() => undefined));
      throw err;
    }
  }
}

/** Most keys a dequeue reads at once: a consumer that loses the race for one tries the next without another read. */
const CLAIM_BATCH = 16;

/**
 * Takes the first key under `prefix` in `order` (creation revision or key) and resolves with it as
 * it was, value included. The key is deleted in a txn that holds only if it is unchanged, so two
 * consumers never both get one item; when the prefix is empty, waits for a put under it. Rejects
 * with CallCanceledError when `signal` fires, except once an item is claimed: that one is returned.
 */
export async function takeFirst(client: EtcdApi, prefix: string, order: "create" | "key", signal?: AbortSignal): Promise<KeyValue> {
  for (;;) {
    const res = await client.kv.get(prefix, { prefix: true, sort: { target: order, order: "ascend" }, limit: CLAIM_BATCH, keysOnly: true, signal });
    for (const candidate of res.kvs) {
      // Not aborted by the signal: a claim applied but never answered would lose the item.
      const claim = await client.txn().if(compare.modRevision(candidate.key, "=", candidate.modRevision)).then(op.delete(candidate.key, { prevKv: true })).commit();
      const item = claim.succeeded ? claim.results[0].prevKvs[0] : undefined;
      if (item) return item;
    }
    if (res.kvs.length === 0) await waitEvent(client, prefix, "put", res.header.revision, { prefix: true, signal });
  }
}

/**
 * How long the cleanup of an aborted wait (leaving a lock's queue, withdrawing a candidacy) may
 * take, in ms: the caller gave up, so it must not wait on a frozen member for the connection's
 * ping. A cleanup that fails leaves the key to the session's lease.
 */
const CLEANUP_DEADLINE_MS = 750;

/** Runs the cleanup of an aborted wait within CLEANUP_DEADLINE_MS, ignoring its failure: the wait's own error is what the caller hears. */
export async function cleanUp(cleanup: (options: CallOptions) => Promise<void>): Promise<void> {
  await cleanup({ deadline: CLEANUP_DEADLINE_MS }).catch(() => undefined);
}

/** A signal that fires when either does. */
export function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

/** Whether `key` still exists as created at `revision`: a session lost while waiting took it away. */
export async function stillHeld(client: EtcdApi, key: string, revision: bigint, options: CallOptions = {}): Promise<boolean> {
  const res = await client.kv.get(key, options);
  return res.kvs[0]?.createRevision === revision;
}

/** A recipe's key or prefix, checked: a non-empty string, else InvalidArgumentError naming `what`. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name === "") throw new InvalidArgumentError(what, `must be a non-empty string, got ${name === "" ? "an empty string" : describe(name)}`);
  return name;
}

function randomName(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}
