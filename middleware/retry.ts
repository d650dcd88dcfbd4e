import { type CallOptions, type ClientMiddleware, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { type RetryOptions, retryMiddleware as retryEveryCall } from "nice-grpc-client-middleware-retry";

/**
 * What the retry middleware waits out its backoff on when a call has no signal: never aborts and
 * keeps no listeners. (One shared AbortSignal would gather a listener per call in backoff, and
 * Node warns of a leak past 10.)
 */
const NO_SIGNAL = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} } as unknown as AbortSignal;

/**
 * nice-grpc-client-middleware-retry, entered only by the calls it retries: unary calls that change
 * nothing (or that say `retry: true`), as it decides itself. The others go straight on, without a
 * generator of their own per call. A call without a signal gets one that never aborts: given
 * none, the library makes an AbortController per call to wait out a backoff that rarely comes,
 * which costs more CPU than the rest of the chain together. The attempts below see no signal, as
 * the caller gave none.
 */
export const retryMiddleware = ((call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions & RetryOptions) => {
  const level = call.method.options.idempotencyLevel;
  const retried = !call.requestStream && !call.responseStream && (options.retry ?? (level === "IDEMPOTENT" || level === "NO_SIDE_EFFECTS"));
  if (!retried) return call.next(call.request as never, options);
  if (options.signal) return retryEveryCall(call, options);
  const next = call.next as (request: unknown, options: CallOptions) => AsyncGenerator<never, unknown, undefined>;
  const attempts = { ...call, next: (request: unknown, attempt: CallOptions) => next(request, { ...attempt, signal: undefined }) } as ClientMiddlewareCall<unknown, unknown>;
  return retryEveryCall(attempts, { ...options, signal: NO_SIGNAL });
}) as ClientMiddleware<RetryOptions>;

/** How calls that change nothing on the server are retried; modelled on clientv3's retry policy. */
export interface RetryPolicy {
  /** Retries after the first attempt. Default 10; 0 turns retries off. */
  maxRetries?: number;
  /** Wait before the first retry, in ms; it doubles per retry (with jitter). Default 25. */
  backoffWaitMs?: number;
  /** Longest wait between retries, in ms. Default 1000. */
  backoffMaxMs?: number;
}

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
