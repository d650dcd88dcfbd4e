import type { Status } from "nice-grpc-common";
import type { ServerErrorClass } from "../core/errors.js";

/** A call the in-memory etcd answers with a failure: the gRPC status and message etcd would send. */
export class Refusal extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
  }
}

/** The failure etcd answers with as `error` (ErrEmptyKey, ErrCompacted, ...): its code and exact message. */
export function refusal(error: ServerErrorClass): Refusal {
  return new Refusal(error.code, error.serverMessage);
}
