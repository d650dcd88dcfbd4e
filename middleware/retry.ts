import { Status } from "nice-grpc-common";
import type { RetryOptions } from "nice-grpc-client-middleware-retry";

export { retryMiddleware } from "nice-grpc-client-middleware-retry";

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
