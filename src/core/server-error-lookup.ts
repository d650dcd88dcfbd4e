import { Status } from "nice-grpc-common";
import * as errors from "./errors.js";
import { EtcdServerError, type ServerErrorClass } from "./errors.js";

function isServerErrorClass(value: unknown): value is ServerErrorClass {
  return typeof value === "function" && value.prototype instanceof EtcdServerError;
}

/** etcd's errors by the exact message it sends them with. */
const byMessage = new Map<string, ServerErrorClass>(
  Object.values(errors)
    .filter(isServerErrorClass)
    .map((cls) => [cls.serverMessage, cls]),
);

/**
 * The typed error for a message etcd returned. Without a gRPC code (a watch cancelled with a
 * reason), the code etcd uses for that error is taken, or Unknown.
 */
export function serverErrorFor(message: string, code: Status | undefined, endpoint: string | undefined): EtcdServerError {
  const cls = byMessage.get(message);
  return new (cls ?? EtcdServerError)(message, code ?? cls?.code ?? Status.UNKNOWN, endpoint);
}

/** Whether a status message comes from etcd (its server or its election service) rather than from the transport. */
export function isEtcdMessage(message: string): boolean {
  return byMessage.has(message) || message.startsWith("etcdserver:") || message.startsWith("election:");
}

/** The same error as etcd would return it (for errors the SDK finds before sending). */
export function asEtcdReturns(cls: ServerErrorClass, endpoint?: string): EtcdServerError {
  return new cls(cls.serverMessage, cls.code, endpoint);
}
