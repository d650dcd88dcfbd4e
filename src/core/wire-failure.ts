import { ClientError, type Status } from "nice-grpc-common";

/**
 * How far a failed attempt got, as the wire that carried it saw it. This, not the wording of a
 * message, is what the pipeline reads to decide whether the attempt may go to another endpoint
 * and what the SDK tells a caller about a write's fate.
 * - "never-sent": nothing of the request reached an etcd server (no connection, over the send
 *   limit, an address where something else than etcd answers).
 * - "refused-unread": the server refused the request before reading it (HTTP/2 REFUSED_STREAM).
 * - "sent-and-lost": the request may have reached etcd, but no answer came (a connection lost).
 * - "answered": the server answered with this status.
 */
export type Delivery = "never-sent" | "refused-unread" | "sent-and-lost" | "answered";

/** The client's own message-size limit that an attempt ran into. */
export type SizeLimit = "send" | "receive";

/**
 * A failed attempt as a wire reports it: a nice-grpc ClientError (so middleware see the kind of
 * error they know) that also says how far the attempt got.
 */
export class WireFailure extends ClientError {
  /** Set when the attempt broke one of the client's size limits (maxCallSendMsgSize, maxCallRecvMsgSize). */
  readonly sizeLimit: SizeLimit | undefined;
  /** Whether the connection failed in TLS: verifying the server's certificate, or the handshake. */
  readonly tls: boolean;

  constructor(path: string, code: Status, details: string, readonly delivery: Delivery, detail: { sizeLimit?: SizeLimit; tls?: boolean } = {}) {
    super(path, code, details);
    this.sizeLimit = detail.sizeLimit;
    this.tls = detail.tls ?? false;
  }
}

/** How far a failed attempt got; undefined for an error no wire made (a middleware's own, say). */
export function deliveryOf(err: unknown): Delivery | undefined {
  return err instanceof WireFailure ? err.delivery : undefined;
}

/** The size limit a failed attempt ran into, if it failed on one. */
export function sizeLimitOf(err: unknown): SizeLimit | undefined {
  return err instanceof WireFailure ? err.sizeLimit : undefined;
}

/** Whether a failed attempt's connection failed in TLS. */
export function failedInTls(err: unknown): err is WireFailure {
  return err instanceof WireFailure && err.tls;
}
