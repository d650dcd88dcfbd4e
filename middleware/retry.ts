import { type CallOptions, type ClientMiddleware, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { type RetryOptions, retryMiddleware as retryEveryCall } from "nice-grpc-client-middleware-retry";
import { type Attempt, untilFailure } from "../src/core/attempt.js";
import type { RetryPolicy } from "../src/core/config.js";

/**
 * What the retry middleware waits out its backoff on when a call has no signal: never aborts and
 * keeps no listeners. (One shared AbortSignal would gather a listener per call in backoff, and
 * Node warns of a leak past 10.)
 */
const NO_SIGNAL = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} } as unknown as AbortSignal;

/** An attempt that fails as an earlier one did, without sending anything. */
async function* failedAlready(failure: unknown): Attempt {
  throw failure;
}

/**
 * nice-grpc-client-middleware-retry, for the calls it retries: unary calls that change nothing (or
 * that say `retry: true`), as it decides itself. The others go straight on, without a generator of
 * their own per call. The library takes over only once a first attempt failed, for every attempt
 * after it: it then decides everything as if it had made the first one too (whether to retry, the
 * backoff, the count of attempts, `onRetryableError`), while the calls that succeed at once, nearly
 * all, never pay for its generator and its copies of the options. A call without a signal gets one
 * that never aborts: given none, the library makes an AbortController per call to wait out its
 * backoff; the attempts below see no signal, as the caller gave none.
 */
export const retryMiddleware = ((call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions & RetryOptions) => {
  const level = call.method.options.idempotencyLevel;
  const retried = !call.requestStream && !call.responseStream && (options.retry ?? (level === "IDEMPOTENT" || level === "NO_SIDE_EFFECTS"));
  const next = call.next as (request: unknown, options: CallOptions) => Attempt;
  if (!retried) return next(call.request, options);
  return untilFailure(next(call.request, options), (failure) => {
    let replayed = false;
    const attempt = (request: unknown, attemptOptions: CallOptions): Attempt => {
      if (!replayed) {
        replayed = true;
        return failedAlready(failure);
      }
      return next(request, options.signal ? attemptOptions : { ...attemptOptions, signal: undefined });
    };
    return retryEveryCall({ ...call, next: attempt } as ClientMiddlewareCall<unknown, unknown>, options.signal ? options : { ...options, signal: NO_SIGNAL });
  });
}) as ClientMiddleware<RetryOptions>;

/**
 * Per-call defaults for nice-grpc-client-middleware-retry. Which calls retry follows from the
 * proto: RPCs marked NO_SIDE_EFFECTS (or IDEMPOTENT) do, the rest do not. They retry on
 * Unavailable, which covers a lost connection and etcd's transient errors (no leader, leader
 * changed, timeouts, stopped, unhealthy). A caller can still pass `retry: false` per call.
 */
export function retryDefaults(policy: RetryPolicy = {}): RetryOptions {
  return {
    retryMaxAttempts: policy.maxRetries ?? 10,
    retryBaseDelayMs: policy.backoffWaitMs ?? 25,
    retryMaxDelayMs: policy.backoffMaxMs ?? 1000,
    retryableStatuses: [Status.UNAVAILABLE],
  };
}
