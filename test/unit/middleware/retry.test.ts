import { type CallOptions, ClientError, type ClientMiddlewareCall, composeClientMiddleware, Status } from "nice-grpc-common";
import type { RetryOptions } from "nice-grpc-client-middleware-retry";
import { describe, expect, it } from "vitest";
import { retryMiddleware } from "../../../middleware/retry.js";

/*
 * The retry middleware's bookkeeping when attempts fail: the library takes over after a first
 * failure, and it must count, delay and report as if it had made that attempt itself. A real
 * server cannot be made to fail an exact number of times, so the attempts here are scripted;
 * failover.test.ts covers retries against etcd.
 */

const method = { path: "/etcdserverpb.KV/Range", requestStream: false, responseStream: false, options: { idempotencyLevel: "NO_SIDE_EFFECTS" as const } };
const unavailable = () => new ClientError(method.path, Status.UNAVAILABLE, "no leader");

/** Runs one call through the retry middleware above attempts that fail `failures` times, then answer. */
async function call(failures: number, options: CallOptions & RetryOptions, mutating = false) {
  const seen: CallOptions[] = [];
  const attempt = async function* (_call: unknown, attemptOptions: CallOptions) {
    seen.push(attemptOptions);
    if (seen.length <= failures) throw unavailable();
    return "answer";
  };
  const chain = composeClientMiddleware(attempt as never, retryMiddleware);
  const descriptor = mutating ? { ...method, options: {} } : method;
  const calls = chain({ method: descriptor, requestStream: false, responseStream: false, request: {}, next: undefined as never } as ClientMiddlewareCall<unknown, unknown>, options);
  const outcome = await calls.next().then(
    (step) => step.value,
    (err: unknown) => err,
  );
  return { outcome, attempts: seen.length, seen };
}

const fast = { retryBaseDelayMs: 1, retryMaxDelayMs: 4, retryableStatuses: [Status.UNAVAILABLE] };

describe("retry middleware", () => {
  it("answers after failures, reporting each with its attempt number and a growing backoff", async () => {
    const reported: Array<[number, number]> = [];
    const { outcome, attempts } = await call(3, { ...fast, retryBaseDelayMs: 8, retryMaxDelayMs: 1000, retryMaxAttempts: 5, onRetryableError: (_e, attempt, delayMs) => reported.push([attempt, delayMs]) });
    expect(outcome).toBe("answer");
    expect(attempts).toBe(4);
    expect(reported.map(([attempt]) => attempt)).toEqual([0, 1, 2]);
    // Full jitter on 8, 16, 32 ms: each delay is within [base·2^n / 2, base·2^n].
    reported.forEach(([attempt, delayMs]) => {
      expect(delayMs).toBeGreaterThanOrEqual((8 * 2 ** attempt) / 2);
      expect(delayMs).toBeLessThanOrEqual(8 * 2 ** attempt);
    });
  });

  it("gives up after retryMaxAttempts retries with the last failure", async () => {
    const { outcome, attempts } = await call(100, { ...fast, retryMaxAttempts: 3 });
    expect(outcome).toBeInstanceOf(ClientError);
    expect(attempts).toBe(4);
  });

  it("sends a call that changes state once, and a failure other than the retryable ones once", async () => {
    expect((await call(1, { ...fast, retryMaxAttempts: 3 }, true)).attempts).toBe(1);
    const { outcome, attempts } = await call(1, { ...fast, retryMaxAttempts: 3, retryableStatuses: [Status.INTERNAL] });
    expect(outcome).toBeInstanceOf(ClientError);
    expect(attempts).toBe(1);
  });

  it("passes the caller's signal to every attempt, and none when the caller gave none", async () => {
    const signal = new AbortController().signal;
    expect((await call(2, { ...fast, retryMaxAttempts: 3, signal })).seen.map((o) => o.signal)).toEqual([signal, signal, signal]);
    expect((await call(2, { ...fast, retryMaxAttempts: 3 })).seen.map((o) => o.signal)).toEqual([undefined, undefined, undefined]);
  });

  it("stops waiting out its backoff when the caller aborts", async () => {
    const abort = new AbortController();
    const pending = call(1, { ...fast, retryBaseDelayMs: 60_000, retryMaxDelayMs: 60_000, retryMaxAttempts: 3, signal: abort.signal });
    setTimeout(() => abort.abort(), 20);
    const { outcome, attempts } = await pending;
    expect((outcome as Error).name).toBe("AbortError");
    expect(attempts).toBe(1);
  });
});
