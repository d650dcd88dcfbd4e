import { type CallOptions, ClientError, type ClientMiddleware, Status } from "nice-grpc-common";
import {
  CallCanceledError,
  DeadlineExceededError,
  EndpointError,
  EtcdError,
  MessageTooLargeError,
  type Outcome,
  TlsError,
  TransportError,
  UnsupportedVersionError,
} from "../src/core/errors.js";
import { isEtcdMessage, serverErrorFor } from "../src/core/server-error-lookup.js";
import { methodSince } from "../src/core/annotations.js";
import { type Attempt, untilFailure } from "../src/core/attempt.js";
import { deliveryOf, failedInTls, sizeLimitOf } from "../src/core/wire-failure.js";

export interface ErrorMappingOptions {
  /** The endpoint (host:port) a failed call went to, recorded on its error. */
  endpoint: (err: unknown) => string | undefined;
}

/**
 * Turns what nice-grpc throws into the SDK's typed errors, keeping the three kinds of failure
 * apart: the caller's own cancellation or deadline, an error etcd returned, and a transport that
 * did not reach an etcd server. Placed outermost so it sees the final outcome of retries. It acts
 * only on a failure, so a call's messages pass through without a generator of its own.
 */
export function errorMappingMiddleware({ endpoint }: ErrorMappingOptions): ClientMiddleware {
  return ((call, options: CallOptions) =>
    untilFailure(call.next(call.request, options) as Attempt, (err) => {
      if (err instanceof ClientError && err.code === Status.UNIMPLEMENTED && !isEtcdMessage(err.details)) {
        // A method newer than the server: say which etcd version it needs (from the proto options).
        const since = methodSince(call.method.options);
        if (since) throw new UnsupportedVersionError(err.path, since, endpoint(err), { cause: err });
        // Every etcd this SDK supports serves the others: what answered is something else.
        throw notEtcd(endpoint(err), err);
      }
      throw toEtcdError(err, endpoint(err), options.signal);
    })) as ClientMiddleware;
}

/** What a server that is not etcd (or lacks etcd's services) gets a call failed with. */
export function notEtcd(endpoint: string | undefined, answer: ClientError): EndpointError {
  const where = endpoint ?? "the endpoint";
  return new EndpointError(`${where} is not an etcd server (or serves not ${answer.path}): it answered ${Status[answer.code]}: ${answer.details}`, answer.code, endpoint, {
    cause: answer,
    outcome: "not-applied",
  });
}

export function toEtcdError(err: unknown, endpoint: string | undefined, signal: AbortSignal | undefined): unknown {
  if (err instanceof EtcdError) return err;
  // nice-grpc rejects an aborted call with the signal's reason (or an AbortError when it has none).
  if (signal?.aborted && (err === signal.reason || (err instanceof Error && err.name === "AbortError"))) {
    return new CallCanceledError("the call was canceled by its AbortSignal", { cause: signal.reason });
  }
  if (!(err instanceof ClientError)) return err;
  if (isEtcdMessage(err.details)) return serverErrorFor(err.details, err.code, endpoint);
  switch (err.code) {
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(`deadline passed before etcd answered ${err.path}`, { cause: err });
    case Status.CANCELLED:
      if (signal?.aborted) return new CallCanceledError(`${err.path} was canceled`, { cause: signal.reason });
      break;
    case Status.RESOURCE_EXHAUSTED:
      switch (sizeLimitOf(err)) {
        case "send":
          return new MessageTooLargeError(`request of ${err.path} is over the send limit (maxCallSendMsgSize): ${err.details}`, err.code, endpoint, { cause: err, outcome: "not-applied" });
        case "receive":
          // etcd answered, so it served the call; only the answer is lost.
          return new MessageTooLargeError(`response of ${err.path} is over the receive limit (maxCallRecvMsgSize): ${err.details}`, err.code, endpoint, { cause: err, outcome: "unknown" });
      }
      // etcd's gRPC server words its own receive limit so (grpc-go), as etcd words its errors.
      if (err.details.startsWith("grpc: received message larger than max")) {
        return new MessageTooLargeError(`request of ${err.path} is over the server's receive limit: ${err.details}`, err.code, endpoint, { cause: err, outcome: "not-applied" });
      }
      break;
    case Status.UNAVAILABLE: {
      const where = endpoint ?? "the endpoints";
      if (failedInTls(err)) return new TlsError(`TLS connection to etcd at ${where} failed: ${err.details}`, err.code, endpoint, { cause: err, outcome: "not-applied" });
      const message =
        outcomeOf(err) === "not-applied"
          ? `no etcd server reachable at ${where}: ${err.details}`
          : // The request may have reached etcd: whether a write was applied is unknown.
            `connection to etcd at ${where} lost during ${err.path}, outcome unknown: ${err.details}`;
      return new EndpointError(message, err.code, endpoint, { cause: err, outcome: outcomeOf(err) });
    }
  }
  return new TransportError(`${err.path} failed: ${err.details}`, err.code, endpoint, { cause: err, outcome: outcomeOf(err) });
}

/** What a failed attempt did to etcd's data, from how far its wire says it got. */
function outcomeOf(err: unknown): Outcome {
  const delivery = deliveryOf(err);
  return delivery === "never-sent" || delivery === "refused-unread" ? "not-applied" : "unknown";
}
