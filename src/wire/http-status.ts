import { Status } from "nice-grpc-common";

/**
 * The gRPC status of an HTTP/2 response that carries no grpc-status, as the gRPC spec maps it
 * ("HTTP to gRPC Status Code Mapping", doc/http-grpc-status-mapping.md in grpc/grpc): what a proxy
 * or a server that is not gRPC answered a gRPC call with.
 */
export function grpcStatusOfHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/**
 * The gRPC status of an HTTP/JSON gateway response whose body is not the gateway's error JSON (a
 * proxy, a server that is not etcd): grpc-gateway's own code-to-HTTP table (runtime.HTTPStatusFromCode)
 * read backwards, taking for each HTTP status the code a REST client would mean by it (400 is a bad
 * argument here, where a gRPC server never sends it).
 */
export function gatewayStatusOfHttp(httpStatus: number): Status {
  if (httpStatus === 404 || httpStatus === 405 || httpStatus === 501) return Status.UNIMPLEMENTED;
  if (httpStatus === 401) return Status.UNAUTHENTICATED;
  if (httpStatus === 403) return Status.PERMISSION_DENIED;
  if (httpStatus === 408 || httpStatus === 504) return Status.DEADLINE_EXCEEDED;
  if (httpStatus === 413) return Status.RESOURCE_EXHAUSTED;
  if (httpStatus === 429 || httpStatus === 502 || httpStatus === 503) return Status.UNAVAILABLE;
  if (httpStatus >= 400 && httpStatus < 500) return Status.INVALID_ARGUMENT;
  return Status.INTERNAL;
}

/** A gRPC status code as a server wrote it (a number, or its decimal text): any other value is Unknown. */
export function grpcCodeOf(value: unknown): Status {
  const code = typeof value === "string" && /^\d{1,2}$/.test(value) ? Number(value) : value;
  return Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 16 ? (code as Status) : Status.UNKNOWN;
}
