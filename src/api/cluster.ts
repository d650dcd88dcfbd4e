import type { ClusterDefinition, Member as MemberPb, ResponseHeader as ResponseHeaderPb } from "../../gen/etcdserverpb/rpc.js";
import { type Int64, toUint64 } from "../core/int64.js";
import { type CallOptions, callOptions, ResponseHeader } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

/** A member of the cluster, as the Cluster calls give it. */
export interface Member {
  /** The member's ID (uint64). */
  id: bigint;
  /** Empty until a newly added member has started. */
  name: string;
  /** The URLs the other members reach it on. */
  peerURLs: string[];
  /** The URLs clients reach it on; empty until a newly added member has started. */
  clientURLs: string[];
  /** A non-voting learner, which serves only status and serializable reads. */
  isLearner: boolean;
}

/** What the Cluster calls resolve to: the member list after the call. */
export interface MembersResponse {
  /** Which member answered, at which revision. */
  header: ResponseHeader;
  /** Every member, learners included. */
  members: Member[];
}

function member(pb: MemberPb): Member {
  return { id: pb.ID, name: pb.name, peerURLs: pb.peerURLs, clientURLs: pb.clientURLs, isLearner: pb.isLearner };
}

function members(response: { header: ResponseHeaderPb | undefined; members: MemberPb[] }): MembersResponse {
  return { header: new ResponseHeader(response.header), members: response.members.map(member) };
}

/** Cluster membership: `client.cluster`, as clientv3's Cluster. */
export class Cluster {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof ClusterDefinition>) {}

  /** The members; `linearizable` reads them through the raft log (etcd 3.5+) instead of the answering member's view. */
  async memberList(options: { linearizable?: boolean } & CallOptions = {}): Promise<MembersResponse> {
    return members(await this.rpc().memberList({ linearizable: options.linearizable ?? false }, callOptions(options)));
  }

  /** Adds a voting member that will listen on `peerURLs`; start it with --initial-cluster-state=existing. */
  async memberAdd(peerURLs: string[], options: CallOptions = {}): Promise<MembersResponse & {
    /** The member added; its `name` and `clientURLs` are empty until it starts. */
    member: Member;
  }> {
    return this.add(peerURLs, false, options);
  }

  /** Adds a non-voting learner; promote it once it has caught up. */
  async memberAddAsLearner(peerURLs: string[], options: CallOptions = {}): Promise<MembersResponse & {
    /** The learner added; its `name` and `clientURLs` are empty until it starts. */
    member: Member;
  }> {
    return this.add(peerURLs, true, options);
  }

  /** Removes a member from the cluster; the member then stops itself. */
  async memberRemove(id: Int64, options: CallOptions = {}): Promise<MembersResponse> {
    return members(await this.rpc().memberRemove({ ID: toUint64(id, "member id") }, callOptions(options)));
  }

  /** Changes the peer URLs of a member. */
  async memberUpdate(id: Int64, peerURLs: string[], options: CallOptions = {}): Promise<MembersResponse> {
    return members(await this.rpc().memberUpdate({ ID: toUint64(id, "member id"), peerURLs }, callOptions(options)));
  }

  /** Makes a learner that is in sync with the leader a voting member; ErrLearnerNotReady until then. */
  async memberPromote(id: Int64, options: CallOptions = {}): Promise<MembersResponse> {
    return members(await this.rpc().memberPromote({ ID: toUint64(id, "member id") }, callOptions(options)));
  }

  private async add(peerURLs: string[], isLearner: boolean, options: CallOptions): Promise<MembersResponse & { member: Member }> {
    const response = await this.rpc().memberAdd({ peerURLs, isLearner }, callOptions(options));
    return { ...members(response), member: member(response.member!) };
  }
}
