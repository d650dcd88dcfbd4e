/**
 * What every Node client under test offers the scenarios. Each adapter does each operation the
 * way its library is meant to be used, so the figures compare libraries, not harness code.
 */

export interface Closeable {
  close(): Promise<void>;
}

export interface BenchClient extends Closeable {
  put(key: string, value: Uint8Array): Promise<void>;
  /** Reads one key; returns its value so a warm-up can check that the read did what it should. */
  get(key: string, serializable: boolean): Promise<Uint8Array | undefined>;
  /** A compare-and-swap: if the key's version is above 0 then put; returns whether it succeeded. */
  casPut(key: string, value: Uint8Array): Promise<boolean>;
  /**
   * One watcher per key, all on this client; resolves once etcd has confirmed every one. Each put
   * event's value goes to `onPut`. Closing ends every watcher.
   */
  watchKeys(keys: readonly string[], onPut: (value: Uint8Array) => void): Promise<Closeable>;
  /**
   * Grants `count` leases, at most `concurrency` grants in flight, and has the client keep every
   * one alive; resolves once every keep-alive has started.
   */
  keepAliveLeases(count: number, ttlSeconds: number, concurrency: number): Promise<KeptLeases>;
}

export interface KeptLeases {
  /**
   * Stops the keep-alives and revokes the leases, so that they do not expire into the next run.
   * Resolves with how many etcd no longer had: leases that expired although kept alive. Asking
   * etcd is the one check that means the same for every client.
   */
  close(): Promise<number>;
}

/** Revokes leases `0..count-1`, `concurrency` at a time; how many revokes failed (the lease was gone). */
export async function revokeAll(count: number, concurrency: number, revoke: (index: number) => Promise<unknown>): Promise<number> {
  let gone = 0;
  await inParallel(count, concurrency, (i) => revoke(i).catch(() => gone++));
  return gone;
}

/** Runs `task(0..count-1)` with at most `concurrency` running at once. */
export async function inParallel(count: number, concurrency: number, task: (index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, lane));
}

/** Promise.withResolvers, which Node 20 lacks. */
export function withResolvers<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
