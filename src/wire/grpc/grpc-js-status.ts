import { Status } from "nice-grpc-common";
import type { Delivery, SizeLimit } from "../../core/wire-failure.js";

/** What grpc-js's wording says of a failed call: how far it got, and why where it says. */
export interface GrpcFailure {
  delivery: Delivery;
  sizeLimit?: SizeLimit;
  tls?: boolean;
}

/**
 * grpc-js's last connection error, as it words it after "Last error:": a TLS failure names a
 * certificate, an SSL routine or one of Node's TLS error codes (grpc-js keeps only the message).
 */
const TLS_FAILURE = /Last error: .*(certificate|SSL routines|ERR_TLS_|ERR_SSL_|self[- ]signed)/is;

/**
 * How far a call got, from grpc-js's wording of the failures it makes itself: the one place the SDK
 * reads it. Whatever else fails with Unavailable or Internal came from a connection lost or reset
 * once the call was under way (or from the server, which etcd's own messages tell apart above).
 */
export function deliveryOfGrpcStatus(code: Status, details: string): GrpcFailure {
  switch (code) {
    case Status.UNAVAILABLE:
      if (/^(round_robin: )?No connection established/.test(details)) return { delivery: "never-sent", tls: TLS_FAILURE.test(details) };
      if (details === "Stream refused by server") return { delivery: "refused-unread" };
      return { delivery: "sent-and-lost" };
    case Status.INTERNAL:
      // A stream grpc-js could not open: its connection closed meanwhile.
      if (details.startsWith("Failed to start HTTP/2 stream")) return { delivery: "never-sent" };
      return { delivery: "sent-and-lost" };
    case Status.RESOURCE_EXHAUSTED:
      if (details.startsWith("Attempted to send message with a size larger than")) return { delivery: "never-sent", sizeLimit: "send" };
      if (details.startsWith("Received message larger than max")) return { delivery: "answered", sizeLimit: "receive" };
      return { delivery: "answered" };
    default:
      return { delivery: "answered" };
  }
}
