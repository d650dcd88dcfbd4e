import { sha256 } from "@noble/hashes/sha2.js";
import { AlarmRequest_AlarmAction, AlarmType, DowngradeRequest_DowngradeAction, type MaintenanceDefinition } from "../../gen/etcdserverpb/rpc.js";
import { describe } from "../core/bytes.js";
import { EtcdError, InvalidArgumentError } from "../core/errors.js";
import { type Int64, toNonNegativeInt64, toUint64 } from "../core/int64.js";
import { type CallOptions, callOptions, ResponseHeader } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

export type Alarm = "nospace" | "corrupt";

export interface AlarmMember {
  memberId: bigint;
  alarm: Alarm;
}

export interface StatusResponse {
  header: ResponseHeader;
  version: string;
  dbSize: bigint;
  dbSizeInUse: bigint;
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
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

const ALARMS: Record<Alarm, AlarmType> = { nospace: AlarmType.NOSPACE, corrupt: AlarmType.CORRUPT };
const SHA256_BYTES = 32;

/** Calls for one member (`{ endpoint }`) go there only; without it, to any member. */
export type MemberCallOptions = CallOptions & { endpoint?: string };

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
  async defragment(options: MemberCallOptions = {}): Promise<{ header: ResponseHeader }> {
    return { header: new ResponseHeader((await this.rpc().defragment({}, memberOptions(options))).header) };
  }

  /** A hash of a member's whole backend (for tests: it locks the store while it runs). */
  async hash(options: MemberCallOptions = {}): Promise<{ header: ResponseHeader; hash: number }> {
    const r = await this.rpc().hash({}, memberOptions(options));
    return { header: new ResponseHeader(r.header), hash: r.hash };
  }

  /** A hash of a member's key-value history up to `revision` (0: the newest), to compare members. */
  async hashKV(revision: Int64 = 0, options: MemberCallOptions = {}): Promise<{ header: ResponseHeader; hash: number; compactRevision: bigint; hashRevision: bigint }> {
    const r = await this.rpc().hashKV({ revision: toNonNegativeInt64(revision, "hashKV revision") }, memberOptions(options));
    return { header: new ResponseHeader(r.header), hash: r.hash, compactRevision: r.compactRevision, hashRevision: r.hashRevision };
  }

  /** Hands leadership to another voting member; must reach the current leader (`endpoint`). */
  async moveLeader(targetId: Int64, options: MemberCallOptions = {}): Promise<{ header: ResponseHeader }> {
    const r = await this.rpc().moveLeader({ targetID: toUint64(targetId, "moveLeader targetId") }, memberOptions(options));
    return { header: new ResponseHeader(r.header) };
  }

  /** Validates, starts or cancels a downgrade of the cluster to `version` ("3.6"); etcd 3.5+. */
  async downgrade(action: "validate" | "enable" | "cancel", version = "", options: CallOptions = {}): Promise<{ header: ResponseHeader; version: string }> {
    const actions = { validate: DowngradeRequest_DowngradeAction.VALIDATE, enable: DowngradeRequest_DowngradeAction.ENABLE, cancel: DowngradeRequest_DowngradeAction.CANCEL };
    if (!Object.hasOwn(actions, action)) throw new InvalidArgumentError("downgrade action", `must be validate, enable or cancel, got ${describe(action)}`);
    const r = await this.rpc().downgrade({ action: actions[action], version }, callOptions(options));
    return { header: new ResponseHeader(r.header), version: r.version };
  }

  /**
   * A point-in-time copy of a member's backend, as chunks to write out in order. etcd ends it
   * with a sha256 of the data; the last chunk comes only after it was checked, and a mismatch
   * throws SnapshotIntegrityError instead. Reading slowly slows the transfer (backpressure).
   */
  async *snapshot(options: MemberCallOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    // A portable sha256 (no node:crypto), so that snapshots verify in browsers too.
    const hash = sha256.create();
    // The newest bytes are held back until it is known whether they are the trailing checksum.
    let held = new Uint8Array(0);
    for await (const chunk of this.rpc().snapshot({}, memberOptions(options))) {
      const joined = new Uint8Array(held.length + chunk.blob.length);
      joined.set(held);
      joined.set(chunk.blob, held.length);
      const release = Math.max(0, joined.length - SHA256_BYTES);
      if (release > 0) {
        const out = joined.subarray(0, release);
        hash.update(out);
        yield out;
      }
      held = joined.slice(release);
    }
    const expected = hash.digest();
    if (held.length !== SHA256_BYTES || expected.some((byte, i) => byte !== held[i])) {
      throw new SnapshotIntegrityError("the snapshot's trailing sha256 does not match its data");
    }
    yield held;
  }
}
