/**
 * The smoke suite every runtime runs (see runtimes.test.ts): a few minutes of what a user does
 * first, through the public API of whichever entry point the runtime loaded. It imports nothing at
 * run time (the entry's exports come in as an argument), so one compiled file serves Node, Deno,
 * Bun and a Cloudflare worker alike. Each check prints one line: RESULT_PREFIX and a JSON
 * CheckResult.
 *
 * It compacts etcd's history (the typed-errors check), so give it an etcd of its own.
 */
import type * as WebEntry from "../../src/web.js";

/** The exports of an entry point; "etcd-sdk", "etcd-sdk/http2" and "etcd-sdk/web" share them. */
export type Sdk = typeof WebEntry;

/** How the suite connects: the cluster's endpoints, and for the Node entries a transport. */
export type SmokeConfig = Pick<WebEntry.ClientConfig, "endpoints" | "transport">;

/** The checks, in the order they run. */
export const CHECKS = ["connect", "kv", "txn", "watch-resume", "lease-keepalive", "typed-errors", "close"] as const;

/** The name of one check. */
export type CheckName = (typeof CHECKS)[number];

/** One check's outcome. */
export interface CheckResult {
  check: CheckName;
  ok: boolean;
  /** How long the check took, in milliseconds. */
  ms: number;
  /** What went wrong, for a person to read. */
  error?: string;
}

/** What starts each result line, so results stand out from anything else the runtime prints. */
export const RESULT_PREFIX = "etcd-sdk-smoke ";

type Client = WebEntry.Client;
type WatchEvent = WebEntry.WatchEvent;

/** An assertion failed inside a check. */
class CheckFailed extends Error {}

/** JSON that shows bigints (as strings) rather than failing on them. */
function show(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

function same(actual: unknown, expected: unknown, what: string): void {
  if (show(actual) !== show(expected)) throw new CheckFailed(`${what}: got ${show(actual)}, expected ${show(expected)}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The promise's value, or a CheckFailed once `ms` passed: a hang fails its check instead of the whole run. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error a call threw; a CheckFailed when it threw none. */
async function thrownBy(what: string, call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new CheckFailed(`${what} did not throw`);
}

function describeEvent(prefix: string, event: WatchEvent): string {
  const key = event.kv.keyString.slice(prefix.length);
  return event.type === "put" ? `put ${key}=${event.kv.valueString}` : `delete ${key}`;
}

/** Reads a watcher until `done` says so, then leaves it (which cancels it); the events read, in order. */
async function readEvents(watcher: WebEntry.Watcher, done: (events: WatchEvent[]) => boolean): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  try {
    await within(10_000, "watch events", (async () => {
      for await (const response of watcher) {
        events.push(...response.events);
        if (done(events)) return;
      }
    })());
  } finally {
    watcher.cancel();
  }
  return events;
}

async function kv(client: Client, p: string): Promise<void> {
  for (const [key, value] of [["a", "1"], ["b", "2"], ["c", "3"]] as const) await client.kv.put(`${p}${key}`, value);
  const all = await client.kv.get(p, { prefix: true });
  same(all.kvs.map((kv) => `${kv.keyString.slice(p.length)}=${kv.valueString}`), ["a=1", "b=2", "c=3"], "prefix get");
  same(all.count, 3n, "prefix count");
  same((await client.kv.get(`${p}b`)).kvs[0]?.valueString, "2", "single get");
  same((await client.kv.delete(p, { prefix: true })).deleted, 3n, "prefix delete");
  same((await client.kv.get(p, { prefix: true, countOnly: true })).count, 0n, "count after delete");
}

async function txn(sdk: Sdk, client: Client, p: string): Promise<void> {
  const key = `${p}config`;
  await client.kv.put(key, "v1");
  const { compare, op } = sdk;
  const swap = () => client.txn().if(compare.value(key, "=", "v1")).then(op.put(key, "v2"), op.get(key)).else(op.get(key)).commit();
  const first = await swap();
  same(first.succeeded, true, "first swap succeeded");
  if (first.succeeded) same(first.results[1].kvs[0]?.valueString, "v2", "then-branch get");
  const second = await swap();
  same(second.succeeded, false, "second swap succeeded");
  if (!second.succeeded) same(second.results[0].kvs[0]?.valueString, "v2", "else-branch get");
}

async function watchResume(client: Client, p: string): Promise<void> {
  const first = client.watch(p, { prefix: true });
  await within(10_000, "first watcher ready", first.ready);
  await client.kv.put(`${p}a`, "1");
  await client.kv.put(`${p}b`, "2");
  const seen = await readEvents(first, (events) => events.length >= 2);
  same(seen.map((e) => describeEvent(p, e)), ["put a=1", "put b=2"], "events of the first watcher");
  const lastSeen = seen[seen.length - 1]!.kv.modRevision;

  // Changes while no watcher is open, which the resumed one must replay.
  await client.kv.put(`${p}c`, "3");
  await client.kv.delete(`${p}a`);
  const resumed = client.watch(p, { prefix: true, startRevision: lastSeen + 1n });
  await within(10_000, "resumed watcher ready", resumed.ready);
  // A live change after the missed ones: everything before it is what the watcher replayed.
  await client.kv.put(`${p}end`, "");
  const replayed = await readEvents(resumed, (events) => events.some((e) => e.kv.keyString === `${p}end`));
  same(replayed.map((e) => describeEvent(p, e)), ["put c=3", "delete a", "put end="], "events of the resumed watcher");
}

async function leaseKeepAlive(sdk: Sdk, client: Client, config: SmokeConfig, p: string): Promise<void> {
  const lease = await client.lease.grant(2);
  const ttlMs = Number(lease.ttl) * 1000;
  const kept = await client.lease.keepAlive(lease.id);
  try {
    await client.kv.put(`${p}key`, "alive", { lease: lease.id });
    await sleep(ttlMs * 1.5);
    same((await client.kv.get(`${p}key`)).count, 1n, "keys of the kept lease after 1.5 TTLs");
    same(kept.signal.aborted, false, "kept lease aborted while alive");

    // Revoked by someone else: the keep-alive learns it from etcd's next answer.
    const side = await sdk.Client.connect(config);
    try {
      await side.lease.revoke(lease.id);
    } finally {
      await side.close();
    }
    const lost = await within(ttlMs * 3, "lease loss", kept.lost);
    same(lost instanceof sdk.LeaseLostError, true, "lost is a LeaseLostError");
    same([lost.reason, lost.leaseId], ["gone", lease.id], "reason and lease of the loss");
    same(kept.signal.aborted && kept.signal.reason instanceof sdk.LeaseLostError, true, "kept.signal aborted with the loss");
    same((await client.kv.get(`${p}key`)).count, 0n, "keys of the revoked lease");
  } finally {
    kept.close();
  }
}

async function typedErrors(sdk: Sdk, client: Client, p: string): Promise<void> {
  const { op, Status } = sdk;
  const duplicate = await thrownBy("txn with duplicate keys", () => client.txn().then(op.put(`${p}dup`, "1"), op.put(`${p}dup`, "2")).commit());
  same(
    [duplicate instanceof sdk.ErrDuplicateKey, duplicate instanceof sdk.EtcdServerError, duplicate instanceof sdk.EtcdError],
    [true, true, true],
    `duplicate-key txn error (${String(duplicate)}) is ErrDuplicateKey, EtcdServerError, EtcdError`,
  );
  if (duplicate instanceof sdk.EtcdServerError) same(duplicate.code, Status.INVALID_ARGUMENT, "duplicate-key code");

  const old = await client.kv.put(`${p}compacted`, "1");
  const latest = await client.kv.put(`${p}compacted`, "2");
  await client.kv.compact(latest.header.revision);
  const read = await thrownBy("get at a compacted revision", () => client.kv.get(`${p}compacted`, { revision: old.header.revision }));
  same(read instanceof sdk.ErrCompacted, true, `compacted get error (${String(read)}) is ErrCompacted`);
  if (read instanceof sdk.ErrCompacted) same(read.code, Status.OUT_OF_RANGE, "compacted get code");

  const watcher = client.watch(`${p}compacted`, { startRevision: old.header.revision });
  const watched = await thrownBy("watch from a compacted revision", () => readEvents(watcher, () => true));
  same(watched instanceof sdk.WatchCompactedError && watched instanceof sdk.ErrCompacted, true, `compacted watch error (${String(watched)}) is WatchCompactedError`);
  if (watched instanceof sdk.WatchCompactedError) same([watched.code, watched.compactRevision], [Status.OUT_OF_RANGE, latest.header.revision], "compacted watch code and revision");
}

async function close(sdk: Sdk, client: Client): Promise<void> {
  await within(10_000, "close()", client.close());
  const after = await thrownBy("get after close()", () => client.kv.get("any"));
  same(after instanceof sdk.ClientClosedError, true, `error after close (${String(after)}) is ClientClosedError`);
}

function describeError(err: unknown): string {
  if (err instanceof CheckFailed) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ""}`;
  return String(err);
}

/**
 * Runs every check against etcd at `config.endpoints`, through `sdk` (an entry point's exports),
 * printing a result line for each; resolves whether all passed. A failed check does not stop the
 * others, except that without a connection there is nothing to check.
 */
export async function runSmoke(sdk: Sdk, config: SmokeConfig, print: (line: string) => void): Promise<boolean> {
  const p = `smoke-${globalThis.crypto.randomUUID()}/`;
  let client: Client | undefined;
  let allPassed = true;
  const checks: Record<CheckName, (client: Client) => Promise<void>> = {
    connect: async (c) => same((await c.kv.get(`${p}nothing`)).count, 0n, "count of a missing key"),
    kv: (c) => kv(c, `${p}kv/`),
    txn: (c) => txn(sdk, c, `${p}txn/`),
    "watch-resume": (c) => watchResume(c, `${p}watch/`),
    "lease-keepalive": (c) => leaseKeepAlive(sdk, c, config, `${p}lease/`),
    "typed-errors": (c) => typedErrors(sdk, c, `${p}errors/`),
    close: (c) => close(sdk, c),
  };
  for (const check of CHECKS) {
    const started = Date.now();
    const result: CheckResult = { check, ok: true, ms: 0 };
    try {
      if (check === "connect") client = await sdk.Client.connect({ ...config, dialTimeoutMs: 10_000 });
      if (!client) throw new CheckFailed("no client: connect failed");
      await checks[check](client);
    } catch (err) {
      Object.assign(result, { ok: false, error: describeError(err) });
      allPassed = false;
    }
    result.ms = Date.now() - started;
    print(RESULT_PREFIX + JSON.stringify(result));
  }
  // A failed check may have left the client open; closing twice is harmless.
  await client?.close();
  return allPassed;
}

/** The results in a run's output, in the order printed; lines without the prefix are ignored. */
export function parseResults(output: string): CheckResult[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith(RESULT_PREFIX))
    .map((line) => JSON.parse(line.slice(RESULT_PREFIX.length)) as CheckResult);
}
