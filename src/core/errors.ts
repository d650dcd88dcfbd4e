import { Status } from "nice-grpc-common";

/** Base of every error this SDK throws. */
export class EtcdError extends Error {
  override name = "EtcdError";
}

/** Input the SDK refused before sending anything; `argument` names what was wrong. */
export class InvalidArgumentError extends EtcdError {
  override name = "InvalidArgumentError";
  constructor(
    readonly argument: string,
    problem: string,
  ) {
    super(`${argument} ${problem}`);
  }
}

/** A call was made on a client after close(). */
export class ClientClosedError extends EtcdError {
  override name = "ClientClosedError";
  constructor() {
    super("the etcd client is closed");
  }
}

/** The caller gave up: its AbortSignal fired. The signal's reason is the cause. */
export class CallCanceledError extends EtcdError {
  override name = "CallCanceledError";
}

/** The caller's deadline for the call passed before etcd answered. */
export class DeadlineExceededError extends EtcdError {
  override name = "DeadlineExceededError";
}

/**
 * The call failed in the transport, not in etcd: a message over the size limits, a protocol
 * error. `code` is the gRPC status the transport reported.
 */
export class TransportError extends EtcdError {
  override name = "TransportError";
  constructor(
    message: string,
    readonly code: Status,
    readonly endpoint: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The connection to etcd failed: no etcd server could be reached, what answered was not an etcd
 * server (a closed port, a plain HTTP server, a TLS mismatch), or a connection was lost during
 * the call (its message then says the outcome is unknown).
 */
export class EndpointError extends TransportError {
  override name = "EndpointError";
  /**
   * True when every endpoint was tried until the dial timeout and none could be reached: nothing
   * of the call reached etcd. False when one member's connection failed during the call.
   */
  readonly noneReachable: boolean;

  constructor(message: string, code: Status, endpoint: string | undefined, options?: ErrorOptions & { noneReachable?: boolean }) {
    super(message, code, endpoint, options);
    this.noneReachable = options?.noneReachable ?? false;
  }
}

/**
 * The TLS connection to etcd failed, so nothing reached it: the server's certificate did not
 * verify (signed by a CA the client does not trust, issued for another name, expired) or the
 * server refused the handshake (a client certificate missing or not trusted). The message names
 * the reason as TLS gave it.
 */
export class TlsError extends EndpointError {
  override name = "TlsError";
}

/** A request over `maxCallSendMsgSize` or a response over `maxCallRecvMsgSize`; nothing was applied. */
export class MessageTooLargeError extends TransportError {
  override name = "MessageTooLargeError";
}

/**
 * A watcher has one reader: `subscribe` was called on a watcher that a loop or another observer
 * reads, or `next()` on one that an observer reads.
 */
export class WatcherBusyError extends EtcdError {
  override name = "WatcherBusyError";
}

/** The server is older than the etcd version that added the method called (`since`, "3.5"). */
export class UnsupportedVersionError extends EtcdError {
  override name = "UnsupportedVersionError";
  constructor(
    /** The gRPC method, "/etcdserverpb.Maintenance/Downgrade". */
    readonly method: string,
    readonly since: string,
    readonly endpoint: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`${method} needs etcd ${since} or newer; the server at ${endpoint ?? "the endpoint"} does not have it`, options);
  }
}

/**
 * The client's transport cannot do what was asked: etcd's HTTP gateway has no route for the
 * method, or cannot take requests on a stream once it is open. gRPC can.
 */
export class UnsupportedByTransportError extends EtcdError {
  override name = "UnsupportedByTransportError";
}

/** A member runs an etcd older than the client accepts (`rejectOldCluster`, `minClusterVersion`). */
export class OldClusterError extends EtcdError {
  override name = "OldClusterError";
  constructor(
    readonly endpoint: string,
    readonly serverVersion: string,
    readonly minimumVersion: string,
  ) {
    super(`etcd at ${endpoint} runs ${serverVersion}, older than the minimum ${minimumVersion} this client accepts`);
  }
}

/**
 * A lease kept alive by the client is gone: etcd reported it expired or revoked (`reason`
 * "gone"), or its deadline (last confirmed keep-alive + TTL) passed without a confirmation
 * ("deadline"), or the client or keep-alive was closed ("closed").
 */
export class LeaseLostError extends EtcdError {
  override name = "LeaseLostError";
  constructor(
    readonly leaseId: bigint,
    readonly reason: "gone" | "deadline" | "closed",
  ) {
    super(
      reason === "gone"
        ? `lease ${leaseId} expired or was revoked`
        : reason === "deadline"
          ? `lease ${leaseId} reached its deadline without a confirmed keep-alive`
          : `keep-alive of lease ${leaseId} was closed`,
    );
  }
}

/**
 * An error etcd itself returned. Known ones are subclasses named as in etcd's rpctypes
 * (`ErrEmptyKey`, `ErrCompacted`, ...); an unknown message still arrives as this class.
 */
export class EtcdServerError extends EtcdError {
  override name = "EtcdServerError";
  constructor(
    /** The status message exactly as etcd sent it. */
    readonly serverMessage: string,
    /** The gRPC status code. */
    readonly code: Status,
    /** The endpoint that answered, host:port. */
    readonly endpoint: string | undefined,
  ) {
    super(endpoint ? `${serverMessage} (from ${endpoint})` : serverMessage);
  }
}

/** The class of one error etcd returns, with the gRPC code and the exact message etcd sends it with. */
export type ServerErrorClass = (new (serverMessage: string, code: Status, endpoint: string | undefined) => EtcdServerError) & {
  readonly code: Status;
  readonly serverMessage: string;
};

const byMessage = new Map<string, ServerErrorClass>();

function serverError(name: string, code: Status, message: string): ServerErrorClass {
  const cls = class extends EtcdServerError {
    override name = name;
  };
  Object.defineProperty(cls, "name", { value: name });
  Object.defineProperty(cls, "code", { value: code });
  Object.defineProperty(cls, "serverMessage", { value: message });
  const typed = cls as unknown as ServerErrorClass;
  byMessage.set(message, typed);
  return typed;
}

/**
 * The typed error for a message etcd returned. Without a gRPC code (a watch cancelled with a
 * reason), the code etcd uses for that error is taken, or Unknown.
 */
export function serverErrorFor(message: string, code: Status | undefined, endpoint: string | undefined): EtcdServerError {
  const cls = byMessage.get(message);
  const statusCode = code ?? cls?.code ?? Status.UNKNOWN;
  return new (cls ?? EtcdServerError)(message, statusCode, endpoint);
}

/** Whether a status message comes from etcd (its server or its election service) rather than from the transport. */
export function isEtcdMessage(message: string): boolean {
  return byMessage.has(message) || message.startsWith("etcdserver:") || message.startsWith("election:");
}

const { INVALID_ARGUMENT, OUT_OF_RANGE, RESOURCE_EXHAUSTED, NOT_FOUND, FAILED_PRECONDITION, CANCELLED } = Status;
const { PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE, DATA_LOSS, DEADLINE_EXCEEDED } = Status;

// The errors etcd returns (its rpctypes package), by name, status code and exact message.
/** @internal etcd's message for a request without a key. */
export const EMPTY_KEY_MESSAGE = "etcdserver: key is not provided";
export const ErrEmptyKey = serverError("ErrEmptyKey", INVALID_ARGUMENT, EMPTY_KEY_MESSAGE);
export const ErrKeyNotFound = serverError("ErrKeyNotFound", INVALID_ARGUMENT, "etcdserver: key not found");
export const ErrValueProvided = serverError("ErrValueProvided", INVALID_ARGUMENT, "etcdserver: value is provided");
export const ErrLeaseProvided = serverError("ErrLeaseProvided", INVALID_ARGUMENT, "etcdserver: lease is provided");
export const ErrTooManyOps = serverError("ErrTooManyOps", INVALID_ARGUMENT, "etcdserver: too many operations in txn request");
export const ErrDuplicateKey = serverError("ErrDuplicateKey", INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request");
export const ErrInvalidClientAPIVersion = serverError("ErrInvalidClientAPIVersion", INVALID_ARGUMENT, "etcdserver: invalid client api version");
export const ErrInvalidSortOption = serverError("ErrInvalidSortOption", INVALID_ARGUMENT, "etcdserver: invalid sort option");
export const ErrCompacted = serverError("ErrCompacted", OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted");
export const ErrFutureRev = serverError("ErrFutureRev", OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision");
export const ErrNoSpace = serverError("ErrNoSpace", RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded");
export const ErrLeaseNotFound = serverError("ErrLeaseNotFound", NOT_FOUND, "etcdserver: requested lease not found");
export const ErrLeaseExist = serverError("ErrLeaseExist", FAILED_PRECONDITION, "etcdserver: lease already exists");
export const ErrLeaseTTLTooLarge = serverError("ErrLeaseTTLTooLarge", OUT_OF_RANGE, "etcdserver: too large lease TTL");
export const ErrWatchCanceled = serverError("ErrWatchCanceled", CANCELLED, "etcdserver: watch canceled");
export const ErrMemberExist = serverError("ErrMemberExist", FAILED_PRECONDITION, "etcdserver: member ID already exist");
export const ErrPeerURLExist = serverError("ErrPeerURLExist", FAILED_PRECONDITION, "etcdserver: Peer URLs already exists");
export const ErrMemberNotEnoughStarted = serverError("ErrMemberNotEnoughStarted", FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members");
export const ErrMemberBadURLs = serverError("ErrMemberBadURLs", INVALID_ARGUMENT, "etcdserver: given member URLs are invalid");
export const ErrMemberNotFound = serverError("ErrMemberNotFound", NOT_FOUND, "etcdserver: member not found");
export const ErrMemberNotLearner = serverError("ErrMemberNotLearner", FAILED_PRECONDITION, "etcdserver: can only promote a learner member");
export const ErrLearnerNotReady = serverError("ErrLearnerNotReady", FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader");
export const ErrTooManyLearners = serverError("ErrTooManyLearners", FAILED_PRECONDITION, "etcdserver: too many learner members in cluster");
export const ErrClusterIDMismatch = serverError("ErrClusterIDMismatch", FAILED_PRECONDITION, "etcdserver: cluster ID mismatch");
export const ErrRequestTooLarge = serverError("ErrRequestTooLarge", INVALID_ARGUMENT, "etcdserver: request is too large");
export const ErrRequestTooManyRequests = serverError("ErrRequestTooManyRequests", RESOURCE_EXHAUSTED, "etcdserver: too many requests");
export const ErrRootUserNotExist = serverError("ErrRootUserNotExist", FAILED_PRECONDITION, "etcdserver: root user does not exist");
export const ErrRootRoleNotExist = serverError("ErrRootRoleNotExist", FAILED_PRECONDITION, "etcdserver: root user does not have root role");
export const ErrUserAlreadyExist = serverError("ErrUserAlreadyExist", FAILED_PRECONDITION, "etcdserver: user name already exists");
export const ErrUserEmpty = serverError("ErrUserEmpty", INVALID_ARGUMENT, "etcdserver: user name is empty");
export const ErrUserNotFound = serverError("ErrUserNotFound", FAILED_PRECONDITION, "etcdserver: user name not found");
export const ErrRoleAlreadyExist = serverError("ErrRoleAlreadyExist", FAILED_PRECONDITION, "etcdserver: role name already exists");
export const ErrRoleNotFound = serverError("ErrRoleNotFound", FAILED_PRECONDITION, "etcdserver: role name not found");
export const ErrRoleEmpty = serverError("ErrRoleEmpty", INVALID_ARGUMENT, "etcdserver: role name is empty");
export const ErrAuthFailed = serverError("ErrAuthFailed", INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password");
export const ErrPermissionNotGiven = serverError("ErrPermissionNotGiven", INVALID_ARGUMENT, "etcdserver: permission not given");
export const ErrPermissionDenied = serverError("ErrPermissionDenied", PERMISSION_DENIED, "etcdserver: permission denied");
export const ErrRoleNotGranted = serverError("ErrRoleNotGranted", FAILED_PRECONDITION, "etcdserver: role is not granted to the user");
export const ErrPermissionNotGranted = serverError("ErrPermissionNotGranted", FAILED_PRECONDITION, "etcdserver: permission is not granted to the role");
export const ErrAuthNotEnabled = serverError("ErrAuthNotEnabled", FAILED_PRECONDITION, "etcdserver: authentication is not enabled");
export const ErrInvalidAuthToken = serverError("ErrInvalidAuthToken", UNAUTHENTICATED, "etcdserver: invalid auth token");
export const ErrInvalidAuthMgmt = serverError("ErrInvalidAuthMgmt", INVALID_ARGUMENT, "etcdserver: invalid auth management");
export const ErrAuthOldRevision = serverError("ErrAuthOldRevision", INVALID_ARGUMENT, "etcdserver: revision of auth store is old");
export const ErrNoLeader = serverError("ErrNoLeader", UNAVAILABLE, "etcdserver: no leader");
export const ErrNotLeader = serverError("ErrNotLeader", FAILED_PRECONDITION, "etcdserver: not leader");
export const ErrLeaderChanged = serverError("ErrLeaderChanged", UNAVAILABLE, "etcdserver: leader changed");
export const ErrNotCapable = serverError("ErrNotCapable", FAILED_PRECONDITION, "etcdserver: not capable");
export const ErrStopped = serverError("ErrStopped", UNAVAILABLE, "etcdserver: server stopped");
export const ErrTimeout = serverError("ErrTimeout", UNAVAILABLE, "etcdserver: request timed out");
export const ErrTimeoutDueToLeaderFail = serverError("ErrTimeoutDueToLeaderFail", UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure");
export const ErrTimeoutDueToConnectionLost = serverError("ErrTimeoutDueToConnectionLost", UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost");
export const ErrTimeoutWaitAppliedIndex = serverError("ErrTimeoutWaitAppliedIndex", UNAVAILABLE, "etcdserver: request timed out, waiting for the applied index took too long");
export const ErrUnhealthy = serverError("ErrUnhealthy", UNAVAILABLE, "etcdserver: unhealthy cluster");
export const ErrCorrupt = serverError("ErrCorrupt", DATA_LOSS, "etcdserver: corrupt cluster");
export const ErrNotSupportedForLearner = serverError("ErrNotSupportedForLearner", FAILED_PRECONDITION, "etcdserver: rpc not supported for learner");
export const ErrBadLeaderTransferee = serverError("ErrBadLeaderTransferee", FAILED_PRECONDITION, "etcdserver: bad leader transferee");
export const ErrWrongDowngradeVersionFormat = serverError("ErrWrongDowngradeVersionFormat", INVALID_ARGUMENT, "etcdserver: wrong downgrade target version format");
export const ErrInvalidDowngradeTargetVersion = serverError("ErrInvalidDowngradeTargetVersion", INVALID_ARGUMENT, "etcdserver: invalid downgrade target version");
export const ErrClusterVersionUnavailable = serverError("ErrClusterVersionUnavailable", FAILED_PRECONDITION, "etcdserver: cluster version not found during downgrade");
export const ErrDowngradeInProcess = serverError("ErrDowngradeInProcess", FAILED_PRECONDITION, "etcdserver: cluster has a downgrade job in progress");
export const ErrNoInflightDowngrade = serverError("ErrNoInflightDowngrade", FAILED_PRECONDITION, "etcdserver: no inflight downgrade job");
export const ErrCanceled = serverError("ErrCanceled", CANCELLED, "etcdserver: request canceled");
export const ErrDeadlineExceeded = serverError("ErrDeadlineExceeded", DEADLINE_EXCEEDED, "etcdserver: context deadline exceeded");

/** Proclaim or resign was called by a candidate that is not the leader (any more). */
export class NotLeaderError extends EtcdError {
  override name = "NotLeaderError";
}

/** The election has no leader. */
export class NoLeaderError extends EtcdError {
  override name = "NoLeaderError";
}
