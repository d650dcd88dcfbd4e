import { sha256 } from "@noble/hashes/sha2.js";
import { AlarmRequest_AlarmAction, AlarmType, DowngradeRequest_DowngradeAction, type MaintenanceDefinition, type SnapshotResponse } from "../../gen/etcdserverpb/rpc.js";
import { describe } from "../core/bytes.js";
import { EtcdError, InvalidArgumentError } from "../core/errors.js";
import { type Int64, toNonNegativeInt64, toUint64 } from "../core/int64.js";
import { type CallOptions, callOptions, ResponseHeader } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

/** An alarm a member raises: its database reached the space quota, or its data differs from the others'. */
export type Alarm = "nospace" | "corrupt";

/** An alarm raised by one member. */
export interface AlarmMember {
  /** The member that raised it (uint64). */
  memberId: bigint;
  /** Which alarm. */
  alarm: Alarm;
}

/** What {@link Maintenance.status} resolves to: one member's view of itself and of the cluster. */
export interface StatusResponse {
  /** Which member answered, at which revision. */
  header: ResponseHeader;
  /** The etcd version the member runs, as "3.7.1". */
  version: string;
  /** Size of the member's backend file, in bytes. */
  dbSize: bigint;
  /** Bytes of the backend in use; the rest is free pages that `defragment()` gives back. */
  dbSizeInUse: bigint;
  /** The leader's member ID as this member sees it; 0n when it has none. */
  leader: bigint;
  /** The member's raft committed index. */
  raftIndex: bigint;
  /** The member's raft term. */
  raftTerm: bigint;
  /** The raft index the member has applied; behind `raftIndex` while it catches up. */
  raftAppliedIndex: bigint;
  /** Problems the member reports: "etcdserver: no leader", and each alarm raised. */
  errors: string[];
  /** Whether the member is a learner. */
  isLearner: boolean;
  /** etcd 3.6+; empty before. */
  storageVersion: string;
  /** etcd 3.6+; 0n before. */
  dbSizeQuota: bigint;
}

/** A snapshot whose trailing sha256 does not match its data. */
export class SnapshotIntegrityError extends EtcdError {
  override name = "SnapshotIntegrityError";
}

/**
 * How far a snapshot's transfer is, reported as each of etcd's responses arrives (before the
 * sha256 is checked). Both count bytes as bigints, as every 64-bit number of this SDK.
 */
export interface SnapshotProgress {
  /**
   * Bytes received so far, the trailing 32-byte sha256 included: the last report's is the size
   * of the whole snapshot as its chunks write it out.
   */
  received: bigint;
  /**
   * Bytes of the database etcd has yet to send (its `remainingBytes`). The sha256 is not
   * counted: it reaches 0 with the database's last bytes, and stays 0 for the checksum's report.
   */
  remaining: bigint;
}

/** Options of snapshot() and snapshotWithVersion(). */
export type SnapshotOptions = MemberCallOptions & {
  /**
   * Called with each response's progress before its bytes are handed out, so a chunk is always
   * counted by the time the reader sees it. An exception it throws ends the snapshot with it.
   */
  onProgress?: (progress: SnapshotProgress) => void;
};

/** What snapshotWithVersion() resolves to. */
export interface VersionedSnapshot {
  /**
   * The storage version of the member's backend as etcd sends it, major.minor.0 ("3.7.0" from
   * etcd 3.7.x), which etcdutl checks when it restores. Undefined from etcd 3.4 and 3.5, which
   * do not send it, and from a 3.6+ member that has not recorded one yet (just after a new
   * cluster starts, until its cluster version is decided).
   */
  version: string | undefined;
  /** The snapshot's chunks, as snapshot() yields them. */
  chunks: AsyncGenerator<Uint8Array, void, undefined>;
}

const ALARMS: Record<Alarm, AlarmType> = { nospace: AlarmType.NOSPACE, corrupt: AlarmType.CORRUPT };
const SHA256_BYTES = 32;

/** Calls for one member (`{ endpoint }`) go there only; without it, to any member. */
export type MemberCallOptions = CallOptions & {
  /** The member to ask, host:port as in `client.endpoints`: the call goes there only, without failover. */
  endpoint?: string;
};

function memberOptions(options: MemberCallOptions): ReturnType<typeof callOptions> & { endpoint?: string } {
  return { ...callOptions(options), ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}) };
}

/** Maintenance of members and of the cluster: `client.maintenance`, as clientv3's Maintenance. */
export class Maintenance {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof MaintenanceDefinition>) {}

  /** The status of one member (`endpoint`) or of whichever member answers. */
  async status(options: MemberCallOptions = {}): Promise<StatusResponse> {
    const r = await this.rpc().status({}, memberOptions(options));
    return {
      header: new ResponseHeader(r.header),
      version: r.version,
      dbSize: r.dbSize,
      dbSizeInUse: r.dbSizeInUse,
      leader: r.leader,
      raftIndex: r.raftIndex,
      raftTerm: r.raftTerm,
      raftAppliedIndex: r.raftAppliedIndex,
      errors: r.errors,
      isLearner: r.isLearner,
      storageVersion: r.storageVersion,
      dbSizeQuota: r.dbSizeQuota,
    };
  }

  /** Every alarm raised in the cluster. */
  async alarmList(options: CallOptions = {}): Promise<AlarmMember[]> {
    const r = await this.rpc().alarm({ action: AlarmRequest_AlarmAction.GET, memberID: undefined, alarm: AlarmType.NONE }, callOptions(options));
    return r.alarms.map((a) => ({ memberId: a.memberID, alarm: a.alarm === AlarmType.CORRUPT ? "corrupt" : "nospace" }));
  }

  /** Clears an alarm of a member (after, say, freeing space for NOSPACE). */
  async alarmDisarm(alarm: AlarmMember, options: CallOptions = {}): Promise<AlarmMember[]> {
    if (!Object.hasOwn(ALARMS, alarm.alarm)) throw new InvalidArgumentError("alarm", `must be nospace or corrupt, got ${describe(alarm.alarm)}`);
    const r = await this.rpc().alarm(
      { action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: toUint64(alarm.memberId, "alarm memberId"), alarm: ALARMS[alarm.alarm] },
      callOptions(options),
    );
    return r.alarms.map((a) => ({ memberId: a.memberID, alarm: a.alarm === AlarmType.CORRUPT ? "corrupt" : "nospace" }));
  }

  /** Rewrites one member's backend file (`endpoint`), giving free pages back to the file system. */
  async defragment(options: MemberCallOptions = {}): Promise<{
    /** Which member answered. */
    header: ResponseHeader;
  }> {
    return { header: new ResponseHeader((await this.rpc().defragment({}, memberOptions(options))).header) };
  }

  /** A hash of a member's whole backend (for tests: it locks the store while it runs). */
  async hash(options: MemberCallOptions = {}): Promise<{
    /** Which member answered, at which revision. */
    header: ResponseHeader;
    /** The hash (CRC-32C, unsigned). */
    hash: number;
  }> {
    const r = await this.rpc().hash({}, memberOptions(options));
    return { header: new ResponseHeader(r.header), hash: r.hash };
  }

  /** A hash of a member's key-value history up to `revision` (0: the newest), to compare members. */
  async hashKV(revision: Int64 = 0, options: MemberCallOptions = {}): Promise<{
    /** Which member answered, at which revision. */
    header: ResponseHeader;
    /** The hash (CRC-32C, unsigned); equal on members that hold the same history. */
    hash: number;
    /** The revision of the member's last compaction. */
    compactRevision: bigint;
    /** The revision the hash covers up to (etcd 3.6+; 0n before). */
    hashRevision: bigint;
  }> {
    const r = await this.rpc().hashKV({ revision: toNonNegativeInt64(revision, "hashKV revision") }, memberOptions(options));
    return { header: new ResponseHeader(r.header), hash: r.hash, compactRevision: r.compactRevision, hashRevision: r.hashRevision };
  }

  /** Hands leadership to another voting member; must reach the current leader (`endpoint`). */
  async moveLeader(targetId: Int64, options: MemberCallOptions = {}): Promise<{
    /** Which member answered. */
    header: ResponseHeader;
  }> {
    const r = await this.rpc().moveLeader({ targetID: toUint64(targetId, "moveLeader targetId") }, memberOptions(options));
    return { header: new ResponseHeader(r.header) };
  }

  /** Validates, starts or cancels a downgrade of the cluster to `version` ("3.6"); etcd 3.5+. */
  async downgrade(action: "validate" | "enable" | "cancel", version = "", options: CallOptions = {}): Promise<{
    /** Which member answered. */
    header: ResponseHeader;
    /** The cluster's version, "major.minor". */
    version: string;
  }> {
    const actions = { validate: DowngradeRequest_DowngradeAction.VALIDATE, enable: DowngradeRequest_DowngradeAction.ENABLE, cancel: DowngradeRequest_DowngradeAction.CANCEL };
    if (!Object.hasOwn(actions, action)) throw new InvalidArgumentError("downgrade action", `must be validate, enable or cancel, got ${describe(action)}`);
    const r = await this.rpc().downgrade({ action: actions[action], version }, callOptions(options));
    return { header: new ResponseHeader(r.header), version: r.version };
  }

  /**
   * A point-in-time copy of a member's backend, as chunks to write out in order. etcd ends it
   * with a sha256 of the data; the last chunk comes only after it was checked, and a mismatch
   * throws SnapshotIntegrityError instead. Reading slowly slows the transfer (backpressure).
   * `onProgress` hears how far the transfer is as etcd's responses arrive (see SnapshotProgress).
   * Errors are thrown when the chunks are iterated.
   *
   * @example
   * ```ts
   * let size = 0;
   * for await (const chunk of client.maintenance.snapshot({ signal: AbortSignal.timeout(30_000) })) {
   *   size += chunk.length; // write the chunks out in order: a file stream, an upload
   * }
   * console.log(`a snapshot of ${size} bytes, its sha256 checked`);
   * ```
   *
   * @throws {@link InvalidArgumentError} for an `onProgress` that is not a function, or a bad
   * `signal` or `deadline`, before anything is sent.
   * @throws {@link SnapshotIntegrityError} when the data does not match etcd's sha256, in place of
   * the last chunk.
   * @throws {@link CallCanceledError} when `signal` fires; {@link DeadlineExceededError} when
   * `deadline` passes.
   * @throws {@link EndpointError} when no member can be reached, or the connection is lost.
   */
  async *snapshot(options: SnapshotOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    const onProgress = progressListener(options.onProgress, "snapshot onProgress");
    yield* verifiedChunks(this.rpc().snapshot({}, memberOptions(options))[Symbol.asyncIterator](), undefined, onProgress);
  }

  /**
   * snapshot() together with the storage version etcd records in it, as clientv3's
   * SnapshotWithVersion: resolves once etcd's first response arrives, so the version is known
   * before anything is written. `chunks` are snapshot()'s (same checks, same `onProgress`) and
   * hold the call open until they are read to the end, or closed (`break`, `chunks.return()`,
   * `options.signal`).
   *
   * Throws (rejects): InvalidArgumentError (`snapshotWithVersion onProgress` not a function, a
   * bad signal or deadline) before anything is sent; the call's own errors when etcd cannot be
   * reached. `chunks` throws SnapshotIntegrityError and later failures of the call.
   */
  async snapshotWithVersion(options: SnapshotOptions = {}): Promise<VersionedSnapshot> {
    const onProgress = progressListener(options.onProgress, "snapshotWithVersion onProgress");
    const responses = this.rpc().snapshot({}, memberOptions(options))[Symbol.asyncIterator]();
    const first = await responses.next();
    const chunks = verifiedChunks(responses, first.done ? undefined : first.value, onProgress);
    // An async generator closed before its first next() never runs its body, nor its finally:
    // the call opened to read the version would stay open, etcd blocked on sending to it. Ending
    // it here as well is harmless once the body ran (a second return() of the call does nothing).
    const close = chunks.return.bind(chunks);
    chunks.return = async (value) => {
      await responses.return?.();
      return close(value);
    };
    // Before 3.6 the field does not exist, and 3.6+ sends "" until the member records a version.
    const version = first.done || first.value.version === "" ? undefined : first.value.version;
    return { version, chunks };
  }
}

/** The caller's listener, checked up front: else a non-function fails as a TypeError mid-call. */
function progressListener(listener: SnapshotOptions["onProgress"], what: string): SnapshotOptions["onProgress"] {
  if (listener !== undefined && typeof listener !== "function") throw new InvalidArgumentError(what, `must be a function, got ${describe(listener)}`);
  return listener;
}

/**
 * The data of a snapshot's responses (`first`, then the rest of `responses`), checked against the
 * sha256 etcd sends last.
 */
async function* verifiedChunks(
  responses: AsyncIterator<SnapshotResponse>,
  first: SnapshotResponse | undefined,
  onProgress: SnapshotOptions["onProgress"],
): AsyncGenerator<Uint8Array, void, undefined> {
  // A portable sha256 (no node:crypto), so that snapshots verify in browsers too.
  const hash = sha256.create();
  // The newest bytes are held back until it is known whether they are the trailing checksum.
  let held = new Uint8Array(0);
  let received = 0n;
  let pending = first;
  try {
    for (;;) {
      let response = pending;
      pending = undefined;
      if (response === undefined) {
        const next = await responses.next();
        if (next.done) break;
        response = next.value;
      }
      const blob = response.blob;
      received += BigInt(blob.length);
      onProgress?.({ received, remaining: response.remainingBytes });
      const joined = new Uint8Array(held.length + blob.length);
      joined.set(held);
      joined.set(blob, held.length);
      const release = Math.max(0, joined.length - SHA256_BYTES);
      if (release > 0) {
        const out = joined.subarray(0, release);
        hash.update(out);
        yield out;
      }
      held = joined.slice(release);
    }
  } finally {
    // Ends the call when the reader stopped early (or onProgress threw); a call already over
    // ignores it.
    await responses.return?.();
  }
  const expected = hash.digest();
  if (held.length !== SHA256_BYTES || expected.some((byte, i) => byte !== held[i])) {
    throw new SnapshotIntegrityError("the snapshot's trailing sha256 does not match its data");
  }
  yield held;
}
