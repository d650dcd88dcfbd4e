import { Status } from "nice-grpc-common";

/**
 * What a failed call did to etcd's data, as far as the client can know:
 * - `"not-applied"`: it changed nothing (it never reached etcd, or etcd refused it). A write that
 *   failed so is safe to send again.
 * - `"unknown"`: it may have been applied (the connection was lost after it was sent, its deadline
 *   passed or its signal fired meanwhile, or etcd timed out waiting for it). Read the key, or write
 *   with a txn that compares revisions, before sending a write again.
 */
export type Outcome = "not-applied" | "unknown";

/** What every SDK error's constructor takes besides its message. */
export interface EtcdErrorOptions extends ErrorOptions {
  /** See {@link EtcdError.outcome}; `"not-applied"` unless given. */
  outcome?: Outcome;
}

/** Base of every error this SDK throws. */
export class EtcdError extends Error {
  /** The class's name, as stack traces and logs show it; to tell errors apart in code, use `instanceof`. */
  override name = "EtcdError";
  /** Whether the failed call may have changed etcd's data: see {@link Outcome}. */
  readonly outcome: Outcome;

  constructor(message?: string, options?: EtcdErrorOptions) {
    super(message, options);
    this.outcome = options?.outcome ?? "not-applied";
  }
}

/** Input the SDK refused before sending anything; `argument` names what was wrong. */
export class InvalidArgumentError extends EtcdError {
  override name = "InvalidArgumentError";
  constructor(
    /** What was refused: an argument or option, as "get limit" or "endpoints". */
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

/**
 * The caller gave up: its AbortSignal fired. The signal's reason is the cause. Its `outcome` is
 * `"unknown"` unless the call was given up before it was sent.
 */
export class CallCanceledError extends EtcdError {
  override name = "CallCanceledError";

  constructor(message?: string, options?: EtcdErrorOptions) {
    super(message, { outcome: "unknown", ...options });
  }
}

/**
 * The caller's deadline for the call passed before etcd answered. Its `outcome` is `"unknown"`
 * unless the deadline had passed before the call was sent.
 */
export class DeadlineExceededError extends EtcdError {
  override name = "DeadlineExceededError";

  constructor(message?: string, options?: EtcdErrorOptions) {
    super(message, { outcome: "unknown", ...options });
  }
}

/**
 * The call failed in the transport, not in etcd: a message over the size limits, a protocol
 * error. `code` is the gRPC status the transport reported.
 */
export class TransportError extends EtcdError {
  override name = "TransportError";
  constructor(
    message: string,
    /** The gRPC status code, to compare with {@link Status}: `err.code === Status.UNAVAILABLE`. */
    readonly code: Status,
    /** The endpoint the failed attempt went to, host:port; undefined when none was reached. */
    readonly endpoint: string | undefined,
    options?: EtcdErrorOptions,
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

  constructor(message: string, code: Status, endpoint: string | undefined, options?: EtcdErrorOptions & { noneReachable?: boolean }) {
    // A member lost during the call may have applied it; nothing reached one that none could be.
    super(message, code, endpoint, { outcome: options?.noneReachable ? "not-applied" : "unknown", ...options });
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
    /** The etcd version that added the method, "major.minor". */
    readonly since: string,
    /** The endpoint that answered, host:port. */
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
    /** The member found too old, host:port. */
    readonly endpoint: string,
    /** The etcd version that member reported, as "3.4.27". */
    readonly serverVersion: string,
    /** The oldest version the client accepts, "major.minor". */
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
    /** The lost lease's ID. */
    readonly leaseId: bigint,
    /** How it was lost: etcd reported it gone, its deadline passed unconfirmed, or the keep-alive or client was closed. */
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
    // etcd refused most errors before applying anything; the classes whose request may still be
    // applied say so, and an error this SDK does not know may be either.
    super(endpoint ? `${serverMessage} (from ${endpoint})` : serverMessage, { outcome: (new.target as Partial<ServerErrorClass>).outcome ?? "unknown" });
  }
}

/**
 * The class of one error etcd returns (`ErrCompacted`, `ErrLeaseNotFound`, ...): `instanceof` it to
 * catch that error; its statics say the gRPC code and the exact message etcd sends.
 */
export interface ServerErrorClass {
  new (serverMessage: string, code: Status, endpoint: string | undefined): EtcdServerError;
  /** What makes `err instanceof ErrCompacted` narrow `err` to an EtcdServerError. */
  readonly prototype: EtcdServerError;
  /** The gRPC status code etcd returns this error with. */
  readonly code: Status;
  /** The message etcd returns this error with, exactly. */
  readonly serverMessage: string;
  /** Whether a request that failed with it may still have been applied. */
  readonly outcome: Outcome;
}

function serverError(name: string, code: Status, message: string, outcome: Outcome = "not-applied"): ServerErrorClass {
  const cls = class extends EtcdServerError {
    override name = name;
  };
  Object.defineProperty(cls, "name", { value: name });
  Object.defineProperty(cls, "code", { value: code });
  Object.defineProperty(cls, "serverMessage", { value: message });
  Object.defineProperty(cls, "outcome", { value: outcome });
  return cls as unknown as ServerErrorClass;
}

const { INVALID_ARGUMENT, OUT_OF_RANGE, RESOURCE_EXHAUSTED, NOT_FOUND, FAILED_PRECONDITION, CANCELLED } = Status;
const { PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE, DATA_LOSS, DEADLINE_EXCEEDED } = Status;

// The errors etcd returns (its rpctypes package), by name, status code and exact message.
/** A get, put, delete or txn operation gave an empty key (for the whole keyspace, use `""` with `prefix` or `fromKey`). */
export const ErrEmptyKey = serverError("ErrEmptyKey", INVALID_ARGUMENT, "etcdserver: key is not provided");
/** A put with `ignoreValue` or `ignoreLease` named a key that does not exist. */
export const ErrKeyNotFound = serverError("ErrKeyNotFound", INVALID_ARGUMENT, "etcdserver: key not found");
/** A put with `ignoreValue` also gave a value. */
export const ErrValueProvided = serverError("ErrValueProvided", INVALID_ARGUMENT, "etcdserver: value is provided");
/** A put with `ignoreLease` also gave a lease. */
export const ErrLeaseProvided = serverError("ErrLeaseProvided", INVALID_ARGUMENT, "etcdserver: lease is provided");
/** A transaction has more compares, or more operations in a branch, than the server's --max-txn-ops (128 by default). */
export const ErrTooManyOps = serverError("ErrTooManyOps", INVALID_ARGUMENT, "etcdserver: too many operations in txn request");
/** A transaction branch writes one key twice (two puts, or a put inside a range it deletes). */
export const ErrDuplicateKey = serverError("ErrDuplicateKey", INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request");
/** A call's `client-api-version` metadata was not valid UTF-8 (the SDK sends none; a middleware of yours might). */
export const ErrInvalidClientAPIVersion = serverError("ErrInvalidClientAPIVersion", INVALID_ARGUMENT, "etcdserver: invalid client api version");
/** A get asked for a sort order or target etcd does not know. */
export const ErrInvalidSortOption = serverError("ErrInvalidSortOption", INVALID_ARGUMENT, "etcdserver: invalid sort option");
/** A read or watch asked for a revision older than the last compaction. */
export const ErrCompacted = serverError("ErrCompacted", OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted");
/** A read asked for a revision newer than the store's current one. */
export const ErrFutureRev = serverError("ErrFutureRev", OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision");
/** The database reached its space quota (a NOSPACE alarm): writes fail until space is freed (compact, defragment) and the alarm is disarmed. */
export const ErrNoSpace = serverError("ErrNoSpace", RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded");
/** The lease does not exist: it expired, was revoked, or was never granted. */
export const ErrLeaseNotFound = serverError("ErrLeaseNotFound", NOT_FOUND, "etcdserver: requested lease not found");
/** A grant asked for a lease ID that is already in use. */
export const ErrLeaseExist = serverError("ErrLeaseExist", FAILED_PRECONDITION, "etcdserver: lease already exists");
/** A grant asked for a TTL over etcd's maximum of 9,000,000,000 seconds. */
export const ErrLeaseTTLTooLarge = serverError("ErrLeaseTTLTooLarge", OUT_OF_RANGE, "etcdserver: too large lease TTL");
/** etcd ended a watch stream because its side of the call was canceled. */
export const ErrWatchCanceled = serverError("ErrWatchCanceled", CANCELLED, "etcdserver: watch canceled");
/** A member add clashed with the ID of an existing member. */
export const ErrMemberExist = serverError("ErrMemberExist", FAILED_PRECONDITION, "etcdserver: member ID already exist");
/** A member add or update gave peer URLs that another member already has. */
export const ErrPeerURLExist = serverError("ErrPeerURLExist", FAILED_PRECONDITION, "etcdserver: Peer URLs already exists");
/** A membership change would leave too few started members for a quorum (etcd's --strict-reconfig-check, on by default). */
export const ErrMemberNotEnoughStarted = serverError("ErrMemberNotEnoughStarted", FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members");
/** A member add or update gave peer URLs that are not valid URLs. */
export const ErrMemberBadURLs = serverError("ErrMemberBadURLs", INVALID_ARGUMENT, "etcdserver: given member URLs are invalid");
/** A member call named an ID that is not in the cluster. */
export const ErrMemberNotFound = serverError("ErrMemberNotFound", NOT_FOUND, "etcdserver: member not found");
/** memberPromote named a member that is not a learner. */
export const ErrMemberNotLearner = serverError("ErrMemberNotLearner", FAILED_PRECONDITION, "etcdserver: can only promote a learner member");
/** memberPromote named a learner that has not caught up with the leader yet; try again later. */
export const ErrLearnerNotReady = serverError("ErrLearnerNotReady", FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader");
/** A learner add would exceed the server's --max-learners (1 by default). */
export const ErrTooManyLearners = serverError("ErrTooManyLearners", FAILED_PRECONDITION, "etcdserver: too many learner members in cluster");
/** Members of two different clusters met (peer URLs mixed up); etcd reports it between members, rarely to a client. */
export const ErrClusterIDMismatch = serverError("ErrClusterIDMismatch", FAILED_PRECONDITION, "etcdserver: cluster ID mismatch");
/** A request is over the server's --max-request-bytes (1.5 MiB by default). */
export const ErrRequestTooLarge = serverError("ErrRequestTooLarge", INVALID_ARGUMENT, "etcdserver: request is too large");
/** The member is too far behind in applying what the cluster committed, and refuses writes until it catches up. */
export const ErrRequestTooManyRequests = serverError("ErrRequestTooManyRequests", RESOURCE_EXHAUSTED, "etcdserver: too many requests");
/** authEnable was called while there is no root user. */
export const ErrRootUserNotExist = serverError("ErrRootUserNotExist", FAILED_PRECONDITION, "etcdserver: root user does not exist");
/** authEnable was called while the root user lacks the root role. */
export const ErrRootRoleNotExist = serverError("ErrRootRoleNotExist", FAILED_PRECONDITION, "etcdserver: root user does not have root role");
/** userAdd named a user that exists already. */
export const ErrUserAlreadyExist = serverError("ErrUserAlreadyExist", FAILED_PRECONDITION, "etcdserver: user name already exists");
/** A user call gave an empty user name. */
export const ErrUserEmpty = serverError("ErrUserEmpty", INVALID_ARGUMENT, "etcdserver: user name is empty");
/** A user call named a user that does not exist. */
export const ErrUserNotFound = serverError("ErrUserNotFound", FAILED_PRECONDITION, "etcdserver: user name not found");
/** roleAdd named a role that exists already. */
export const ErrRoleAlreadyExist = serverError("ErrRoleAlreadyExist", FAILED_PRECONDITION, "etcdserver: role name already exists");
/** A role call named a role that does not exist. */
export const ErrRoleNotFound = serverError("ErrRoleNotFound", FAILED_PRECONDITION, "etcdserver: role name not found");
/** A role call gave an empty role name. */
export const ErrRoleEmpty = serverError("ErrRoleEmpty", INVALID_ARGUMENT, "etcdserver: role name is empty");
/** Authentication failed: wrong user name or password. */
export const ErrAuthFailed = serverError("ErrAuthFailed", INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password");
/** A permission grant carried no permission. */
export const ErrPermissionNotGiven = serverError("ErrPermissionNotGiven", INVALID_ARGUMENT, "etcdserver: permission not given");
/** Auth is on and the user lacks the permission the call needs: read or write on the keys, or the root role for administration. */
export const ErrPermissionDenied = serverError("ErrPermissionDenied", PERMISSION_DENIED, "etcdserver: permission denied");
/** userRevokeRole named a role the user does not have. */
export const ErrRoleNotGranted = serverError("ErrRoleNotGranted", FAILED_PRECONDITION, "etcdserver: role is not granted to the user");
/** roleRevokePermission named a key or range the role has no permission for. */
export const ErrPermissionNotGranted = serverError("ErrPermissionNotGranted", FAILED_PRECONDITION, "etcdserver: permission is not granted to the role");
/** A call that needs auth on (authenticating, say) reached a cluster with auth off. */
export const ErrAuthNotEnabled = serverError("ErrAuthNotEnabled", FAILED_PRECONDITION, "etcdserver: authentication is not enabled");
/** The auth token is unknown to the member or has expired; a client given `username` and `password` gets a new one and retries once. */
export const ErrInvalidAuthToken = serverError("ErrInvalidAuthToken", UNAUTHENTICATED, "etcdserver: invalid auth token");
/** An auth change etcd forbids while auth is on (deleting the root user or role, taking root's root role away), or a permission with an invalid range. */
export const ErrInvalidAuthMgmt = serverError("ErrInvalidAuthMgmt", INVALID_ARGUMENT, "etcdserver: invalid auth management");
/** The auth token predates a change of users, roles or permissions; a client given `username` and `password` gets a new token and retries once. */
export const ErrAuthOldRevision = serverError("ErrAuthOldRevision", INVALID_ARGUMENT, "etcdserver: revision of auth store is old");
/** The member has no leader (an election is under way, or it is cut off from the quorum). */
export const ErrNoLeader = serverError("ErrNoLeader", UNAVAILABLE, "etcdserver: no leader");
/** A call only the leader serves (moveLeader) reached another member. */
export const ErrNotLeader = serverError("ErrNotLeader", FAILED_PRECONDITION, "etcdserver: not leader");
/** The leader changed while the request waited to be served. */
export const ErrLeaderChanged = serverError("ErrLeaderChanged", UNAVAILABLE, "etcdserver: leader changed", "unknown");
/** The member has not enabled its v3 API yet (it is still starting). */
export const ErrNotCapable = serverError("ErrNotCapable", FAILED_PRECONDITION, "etcdserver: not capable");
/** The member is shutting down. */
export const ErrStopped = serverError("ErrStopped", UNAVAILABLE, "etcdserver: server stopped", "unknown");
/** A request was not committed in time (a slow disk or network, or no quorum); a write may still be applied. */
export const ErrTimeout = serverError("ErrTimeout", UNAVAILABLE, "etcdserver: request timed out", "unknown");
/** As ErrTimeout, most likely because the previous leader failed. */
export const ErrTimeoutDueToLeaderFail = serverError("ErrTimeoutDueToLeaderFail", UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure", "unknown");
/** As ErrTimeout, most likely because the member lost its connection to the leader. */
export const ErrTimeoutDueToConnectionLost = serverError("ErrTimeoutDueToConnectionLost", UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost", "unknown");
/** The member took too long to apply what the cluster committed before it could serve the request. */
export const ErrTimeoutWaitAppliedIndex = serverError("ErrTimeoutWaitAppliedIndex", UNAVAILABLE, "etcdserver: request timed out, waiting for the applied index took too long", "unknown");
/** A membership change or leader transfer was refused: the member is not connected to a quorum, or no member is fit to take over. */
export const ErrUnhealthy = serverError("ErrUnhealthy", UNAVAILABLE, "etcdserver: unhealthy cluster");
/** The cluster has a CORRUPT alarm: data differs between members, and the member refuses requests until it is resolved. */
export const ErrCorrupt = serverError("ErrCorrupt", DATA_LOSS, "etcdserver: corrupt cluster");
/** The call reached a learner, which serves only status and serializable reads. */
export const ErrNotSupportedForLearner = serverError("ErrNotSupportedForLearner", FAILED_PRECONDITION, "etcdserver: rpc not supported for learner");
/** moveLeader named a member that does not exist or is a learner. */
export const ErrBadLeaderTransferee = serverError("ErrBadLeaderTransferee", FAILED_PRECONDITION, "etcdserver: bad leader transferee");
/** downgrade was given a version that is not "major.minor". */
export const ErrWrongDowngradeVersionFormat = serverError("ErrWrongDowngradeVersionFormat", INVALID_ARGUMENT, "etcdserver: wrong downgrade target version format");
/** downgrade was given a version other than one minor version below the cluster's. */
export const ErrInvalidDowngradeTargetVersion = serverError("ErrInvalidDowngradeTargetVersion", INVALID_ARGUMENT, "etcdserver: invalid downgrade target version");
/** downgrade was asked for before the cluster had decided its version. */
export const ErrClusterVersionUnavailable = serverError("ErrClusterVersionUnavailable", FAILED_PRECONDITION, "etcdserver: cluster version not found during downgrade");
/** downgrade was asked to validate or enable while a downgrade is already under way. */
export const ErrDowngradeInProcess = serverError("ErrDowngradeInProcess", FAILED_PRECONDITION, "etcdserver: cluster has a downgrade job in progress");
/** downgrade was asked to cancel while no downgrade is under way. */
export const ErrNoInflightDowngrade = serverError("ErrNoInflightDowngrade", FAILED_PRECONDITION, "etcdserver: no inflight downgrade job");
/** etcd gave up on a request because its side of the call was canceled. */
export const ErrCanceled = serverError("ErrCanceled", CANCELLED, "etcdserver: request canceled", "unknown");
/** The call's deadline passed while etcd was still serving it (a deadline that passes in the client gives DeadlineExceededError). */
export const ErrDeadlineExceeded = serverError("ErrDeadlineExceeded", DEADLINE_EXCEEDED, "etcdserver: context deadline exceeded", "unknown");

/** Proclaim or resign was called by a candidate that is not the leader (any more). */
export class NotLeaderError extends EtcdError {
  override name = "NotLeaderError";
}

/** The election has no leader. */
export class NoLeaderError extends EtcdError {
  override name = "NoLeaderError";
}
