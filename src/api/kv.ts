import {
  type DeleteRangeRequest,
  type DeleteRangeResponse as DeleteRangeResponsePb,
  type KVDefinition,
  type PutRequest,
  type PutResponse as PutResponsePb,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse as RangeResponsePb,
  type ResponseHeader as ResponseHeaderPb,
} from "../../gen/etcdserverpb/rpc.js";
import { base64Encode } from "@bufbuild/protobuf/wire";
import type { KeyValue as KeyValuePb } from "../../gen/mvccpb/kv.js";
import { type Bytes, FROM_KEY_END, describe, prefixEnd, toBytes, utf8 } from "../core/bytes.js";
import { InvalidArgumentError, UnsupportedByTransportError, UnsupportedVersionError } from "../core/errors.js";
import { checkDeadline, checkSignal } from "../core/call-checks.js";
import { type Int64, type StoredInt64, storedInt64, storeInt64, toInt64, toNonNegativeInt64 } from "../core/int64.js";
import type { ServiceClient, TransportCallOptions } from "../pipeline/call-pipeline.js";
import { type CallOptions as GrpcCallOptions, Metadata } from "nice-grpc-common";

/** Per-call options every method takes. */
export interface CallOptions {
  /** Cancels the call; it then rejects with CallCanceledError. Anything but an AbortSignal is an InvalidArgumentError. */
  signal?: AbortSignal;
  /**
   * A Date, or milliseconds from now, after which the call rejects with DeadlineExceededError (at
   * once when it has passed already). NaN, an invalid Date or a non-number is an InvalidArgumentError.
   */
  deadline?: Date | number;
  /**
   * Fail the call with ErrNoLeader when the member it reaches has no leader, rather than answer
   * from a member cut off from the cluster (clientv3's WithRequireLeader). Not over etcd's gateway,
   * which takes no gRPC metadata from a browser: there it is an UnsupportedByTransportError.
   */
  requireLeader?: boolean;
}

/** Which keys an operation covers besides the key itself. Give at most one. */
export interface KeySelection {
  /** Exclusive end: the operation covers [key, end). etcd reads an end of "\0" as "no end" (fromKey). */
  end?: Bytes;
  /** Every key that starts with key (every key at all when key is empty). */
  prefix?: boolean;
  /** Every key at or after key. */
  fromKey?: boolean;
}

/** What a get sorts by: the key, its version, its create or mod revision, or its value. */
export type SortTarget = "key" | "version" | "create" | "mod" | "value";
/** Which way a get sorts; "none" leaves the keys in key order. */
export type SortOrder = "none" | "ascend" | "descend";

/** Options of {@link KV.get}, and of `op.get` in a transaction. */
export interface GetOptions extends KeySelection {
  /** Most keys to return; 0 (the default) means no limit. */
  limit?: Int64;
  /** Read the store as of this revision; the newest when absent or 0. */
  revision?: Int64;
  /** Order of the keys. The order defaults to ascending once a target is given. */
  sort?: {
    /** What to sort by; default "key". */
    target?: SortTarget;
    /** Which way; default "ascend". */
    order?: SortOrder;
  };
  /** Answer from the member's local state without a quorum read; may be stale. */
  serializable?: boolean;
  /** Return keys without values. */
  keysOnly?: boolean;
  /** Return only the count of matching keys. */
  countOnly?: boolean;
  /** Only keys last modified at this revision or later. */
  minModRevision?: Int64;
  /** Only keys last modified at this revision or earlier. */
  maxModRevision?: Int64;
  /** Only keys created at this revision or later. */
  minCreateRevision?: Int64;
  /** Only keys created at this revision or earlier. */
  maxCreateRevision?: Int64;
}

/** Options of {@link KV.put}, and of `op.put` in a transaction. */
export interface PutOptions {
  /** Lease to attach the key to. */
  lease?: Int64;
  /** Return the key as it was before the put in `prevKv`. */
  prevKv?: boolean;
  /** Keep the current value (pass an empty value); the key must exist. */
  ignoreValue?: boolean;
  /** Keep the current lease; the key must exist. */
  ignoreLease?: boolean;
}

/** Options of {@link KV.delete}, and of `op.delete` in a transaction. */
export interface DeleteOptions extends KeySelection {
  /** Return the deleted keys in `prevKvs`. */
  prevKv?: boolean;
}

/** Options of {@link KV.compact}. */
export interface CompactOptions {
  /** Wait until the compaction has reached the backend before answering. */
  physical?: boolean;
}

/** The member-wide part of a header; one object for a run of responses from one member in one term. */
interface HeaderOrigin {
  clusterId: bigint;
  memberId: bigint;
  raftTerm: bigint;
}

const NO_ORIGIN: HeaderOrigin = { clusterId: 0n, memberId: 0n, raftTerm: 0n };
let lastOrigin = NO_ORIGIN;

/** The origin of a response header, shared with the previous header's when they agree. */
function originOf(pb: ResponseHeaderPb): HeaderOrigin {
  const last = lastOrigin;
  if (last.clusterId === pb.clusterId && last.memberId === pb.memberId && last.raftTerm === pb.raftTerm) return last;
  return (lastOrigin = { clusterId: pb.clusterId, memberId: pb.memberId, raftTerm: pb.raftTerm });
}

/** Node's util.inspect (console.log) calls this symbol's method, where there is one, for an object's form. */
const INSPECT = Symbol.for("nodejs.util.inspect.custom");
/** Node's util.inspect, as it is handed to an object's own inspect method. */
type Inspect = (value: unknown, options: unknown) => string;

/** Which member answered, and at which store revision and raft term. */
export class ResponseHeader {
  private readonly origin: HeaderOrigin;
  private readonly storeRevision: StoredInt64;

  /** @internal */
  constructor(pb: ResponseHeaderPb | undefined) {
    this.origin = pb ? originOf(pb) : NO_ORIGIN;
    this.storeRevision = pb ? storeInt64(pb.revision) : 0;
  }
  /** The ID of the cluster that answered (uint64). */
  get clusterId(): bigint {
    return this.origin.clusterId;
  }
  /** The ID of the member that answered (uint64). */
  get memberId(): bigint {
    return this.origin.memberId;
  }
  /** Store revision when the request was served. */
  get revision(): bigint {
    return storedInt64(this.storeRevision);
  }
  /** The raft term when the request was served. */
  get raftTerm(): bigint {
    return this.origin.raftTerm;
  }
  /**
   * What console.log shows: the public fields, not the shared origin they are read from.
   * @hidden
   */
  [INSPECT](_depth: number, options: unknown, inspect: Inspect): string {
    return `ResponseHeader ${inspect({ clusterId: this.clusterId, memberId: this.memberId, revision: this.revision, raftTerm: this.raftTerm }, options)}`;
  }
  /** What JSON.stringify writes: etcd's JSON form of a header, 64-bit integers as decimal strings. */
  toJSON(): {
    /** {@link ResponseHeader.clusterId} in decimal. */
    clusterId: string;
    /** {@link ResponseHeader.memberId} in decimal. */
    memberId: string;
    /** {@link ResponseHeader.revision} in decimal. */
    revision: string;
    /** {@link ResponseHeader.raftTerm} in decimal. */
    raftTerm: string;
  } {
    return { clusterId: String(this.origin.clusterId), memberId: String(this.origin.memberId), revision: String(this.storeRevision), raftTerm: String(this.origin.raftTerm) };
  }
}

/** A key with its value and history; bytes as stored, with text and JSON views. */
export class KeyValue {
  /** The key's bytes; `keyString` decodes them. */
  readonly key: Uint8Array;
  /** The value's bytes (empty for a delete event or a keys-only read); `valueString` and `json()` decode them. */
  readonly value: Uint8Array;
  private readonly created: StoredInt64;
  private readonly modified: StoredInt64;
  private readonly changes: StoredInt64;
  private readonly leaseId: StoredInt64;

  /** @internal */
  constructor(pb: KeyValuePb) {
    this.key = pb.key;
    this.value = pb.value;
    this.created = storeInt64(pb.createRevision);
    this.modified = storeInt64(pb.modRevision);
    this.changes = storeInt64(pb.version);
    this.leaseId = storeInt64(pb.lease);
  }
  /** The key decoded as UTF-8. */
  get keyString(): string {
    return utf8(this.key);
  }
  /** The value decoded as UTF-8. */
  get valueString(): string {
    return utf8(this.value);
  }
  /** The value parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.valueString) as T;
  }
  /** Revision of the key's last creation. */
  get createRevision(): bigint {
    return storedInt64(this.created);
  }
  /** Revision of the key's last change. */
  get modRevision(): bigint {
    return storedInt64(this.modified);
  }
  /** Changes since creation; 1 right after a create. */
  get version(): bigint {
    return storedInt64(this.changes);
  }
  /** Lease the key is attached to; 0n for none. */
  get lease(): bigint {
    return storedInt64(this.leaseId);
  }
  /**
   * What console.log shows: the public fields as the getters give them.
   * @hidden
   */
  [INSPECT](_depth: number, options: unknown, inspect: Inspect): string {
    const fields = { key: this.key, value: this.value, createRevision: this.createRevision, modRevision: this.modRevision, version: this.version, lease: this.lease };
    return `KeyValue ${inspect(fields, options)}`;
  }
  /** What JSON.stringify writes: etcd's JSON form of a key-value, bytes in base64 and 64-bit integers as decimal strings. */
  toJSON(): {
    /** The key's bytes in base64. */
    key: string;
    /** The value's bytes in base64. */
    value: string;
    /** {@link KeyValue.createRevision} in decimal. */
    createRevision: string;
    /** {@link KeyValue.modRevision} in decimal. */
    modRevision: string;
    /** {@link KeyValue.version} in decimal. */
    version: string;
    /** {@link KeyValue.lease} in decimal. */
    lease: string;
  } {
    return {
      key: base64Encode(this.key),
      value: base64Encode(this.value),
      createRevision: String(this.created),
      modRevision: String(this.modified),
      version: String(this.changes),
      lease: String(this.leaseId),
    };
  }
}

/** What {@link KV.get} resolves to. */
export interface GetResponse {
  /** Which member answered, and the store's revision when it did. */
  header: ResponseHeader;
  /** The keys found, in key order unless sorted: without values under `keysOnly`, none under `countOnly`. */
  kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  more: boolean;
  /** Number of keys matched, whatever the limit. */
  count: bigint;
}

/** What {@link KV.put} resolves to. */
export interface PutResponse {
  /** Which member answered; its `revision` is the revision of the put. */
  header: ResponseHeader;
  /** The key before the put, when `prevKv` was asked for and the key existed. */
  prevKv: KeyValue | undefined;
}

/** What {@link KV.delete} resolves to. */
export interface DeleteResponse {
  /** Which member answered, and the store's revision after the delete. */
  header: ResponseHeader;
  /** How many keys were deleted. */
  deleted: bigint;
  /** The deleted keys, when `prevKv` was asked for. */
  prevKvs: KeyValue[];
}

/** What {@link KV.compact} resolves to. */
export interface CompactResponse {
  /** Which member answered, and the store's revision. */
  header: ResponseHeader;
}

const SORT_TARGETS: Record<SortTarget, RangeRequest_SortTarget> = {
  key: RangeRequest_SortTarget.KEY,
  version: RangeRequest_SortTarget.VERSION,
  create: RangeRequest_SortTarget.CREATE,
  mod: RangeRequest_SortTarget.MOD,
  value: RangeRequest_SortTarget.VALUE,
};
const SORT_ORDERS: Record<SortOrder, RangeRequest_SortOrder> = {
  none: RangeRequest_SortOrder.NONE,
  ascend: RangeRequest_SortOrder.ASCEND,
  descend: RangeRequest_SortOrder.DESCEND,
};

function lookup<K extends string, V>(table: Record<K, V>, value: unknown, what: string): V {
  if (typeof value === "string" && Object.hasOwn(table, value)) return table[value as K];
  throw new InvalidArgumentError(what, `must be one of ${Object.keys(table).join(", ")}, got ${describe(value)}`);
}

function optionalInt64(value: Int64 | undefined, what: string): bigint | undefined {
  return value === undefined ? undefined : toNonNegativeInt64(value, what);
}

/**
 * The wire key and range end for a key and its selection options.
 * @internal
 */
export function selectKeys(key: Bytes, selection: KeySelection, what: string): { key: Uint8Array; rangeEnd: Uint8Array | undefined } {
  const bytes = toBytes(key, `${what} key`);
  const chosen = (selection.end !== undefined ? 1 : 0) + (selection.prefix ? 1 : 0) + (selection.fromKey ? 1 : 0);
  if (chosen > 1) throw new InvalidArgumentError(`${what} options`, "take only one of end, prefix and fromKey");
  if (selection.end !== undefined) return { key: bytes, rangeEnd: toBytes(selection.end, `${what} end`) };
  // An empty key stands for the start of the keyspace, which etcd spells "\0".
  const start = bytes.length === 0 && (selection.prefix || selection.fromKey) ? FROM_KEY_END : bytes;
  if (selection.prefix) return { key: start, rangeEnd: bytes.length === 0 ? FROM_KEY_END : prefixEnd(bytes) };
  if (selection.fromKey) return { key: start, rangeEnd: FROM_KEY_END };
  return { key: bytes, rangeEnd: undefined };
}

/** @internal */
export function rangeRequest(key: Bytes, options: GetOptions): Partial<RangeRequest> {
  const { key: wireKey, rangeEnd } = selectKeys(key, options, "get");
  let sortOrder = RangeRequest_SortOrder.NONE;
  let sortTarget = RangeRequest_SortTarget.KEY;
  if (options.sort !== undefined) {
    sortTarget = lookup(SORT_TARGETS, options.sort.target ?? "key", "get sort.target");
    sortOrder = lookup(SORT_ORDERS, options.sort.order ?? "ascend", "get sort.order");
    // Keys come back in ascending key order anyway; etcd skips the sort when told NONE.
    if (sortTarget === RangeRequest_SortTarget.KEY && sortOrder === RangeRequest_SortOrder.ASCEND) {
      sortOrder = RangeRequest_SortOrder.NONE;
    }
  }
  return {
    key: wireKey,
    rangeEnd,
    limit: optionalInt64(options.limit, "get limit"),
    revision: optionalInt64(options.revision, "get revision"),
    sortOrder,
    sortTarget,
    serializable: options.serializable ?? false,
    keysOnly: options.keysOnly ?? false,
    countOnly: options.countOnly ?? false,
    minModRevision: optionalInt64(options.minModRevision, "get minModRevision"),
    maxModRevision: optionalInt64(options.maxModRevision, "get maxModRevision"),
    minCreateRevision: optionalInt64(options.minCreateRevision, "get minCreateRevision"),
    maxCreateRevision: optionalInt64(options.maxCreateRevision, "get maxCreateRevision"),
  };
}

/** @internal */
export function putRequest(key: Bytes, value: Bytes, options: PutOptions): Partial<PutRequest> {
  return {
    key: toBytes(key, "put key"),
    value: toBytes(value, "put value"),
    lease: options.lease === undefined ? undefined : toInt64(options.lease, "put lease"),
    prevKv: options.prevKv ?? false,
    ignoreValue: options.ignoreValue ?? false,
    ignoreLease: options.ignoreLease ?? false,
  };
}

/** @internal */
export function deleteRequest(key: Bytes, options: DeleteOptions): Partial<DeleteRangeRequest> {
  const { key: wireKey, rangeEnd } = selectKeys(key, options, "delete");
  return { key: wireKey, rangeEnd, prevKv: options.prevKv ?? false };
}

/** @internal */
export function getResponse(pb: RangeResponsePb): GetResponse {
  return { header: new ResponseHeader(pb.header), kvs: pb.kvs.map((kv) => new KeyValue(kv)), more: pb.more, count: pb.count };
}

/** @internal */
export function putResponse(pb: PutResponsePb): PutResponse {
  return { header: new ResponseHeader(pb.header), prevKv: pb.prevKv ? new KeyValue(pb.prevKv) : undefined };
}

/** @internal */
export function deleteResponse(pb: DeleteRangeResponsePb): DeleteResponse {
  return { header: new ResponseHeader(pb.header), deleted: pb.deleted, prevKvs: pb.prevKvs.map((kv) => new KeyValue(kv)) };
}

/** Options of {@link KV.iterate}. */
export interface IterateOptions extends KeySelection {
  /** Read as of this revision; by default the revision when the iteration starts. */
  revision?: Int64;
  /** Most keys to yield; 0 (the default) means all. */
  limit?: Int64;
  /** Yield keys without values. */
  keysOnly?: boolean;
  /** Read from the answering member's local state without a quorum read; may be stale. */
  serializable?: boolean;
  /** Keys per request when the server is older than etcd 3.7 and pages are read with Range. Default 1000. */
  pageSize?: number;
}

/**
 * Reads and writes of keys; `client.kv`, mirroring clientv3's KV interface.
 *
 * @example
 * ```ts
 * await client.kv.put("example/kv/a", "1");
 * await client.kv.put("example/kv/b", JSON.stringify({ n: 2 }));
 * const { kvs, count } = await client.kv.get("example/kv/", { prefix: true });
 * console.log(count, kvs.map((kv) => `${kv.keyString}=${kv.valueString}`)); // 2n ["example/kv/a=1", ...]
 * console.log(kvs[1]?.json<{ n: number }>().n); // 2
 * const { deleted } = await client.kv.delete("example/kv/", { prefix: true });
 * console.log(deleted); // 2n
 * ```
 */
export class KV {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof KVDefinition>) {}

  /**
   * Reads one key, or a range, prefix or from-key selection of keys.
   *
   * @throws {@link InvalidArgumentError} for a bad key or option, before anything is sent.
   * @throws {@link ErrCompacted} when `revision` was compacted; {@link ErrFutureRev} when it is
   * newer than the store.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`.
   */
  async get(key: Bytes, options: GetOptions & CallOptions = {}): Promise<GetResponse> {
    const request = rangeRequest(key, options);
    return getResponse(await this.rpc().range(request, callOptions(options)));
  }

  /**
   * Every key of a range, prefix or from-key selection, in key order, at one revision, without
   * holding the whole range in one message: etcd 3.7's RangeStream, or on older servers pages of
   * Range read at the revision of the first page.
   *
   * @throws {@link InvalidArgumentError} for a bad key or option, before anything is sent.
   * @throws {@link ErrCompacted} when `revision` (or, on older servers, the first page's
   * revision while later pages are read) was compacted.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`.
   */
  async *iterate(key: Bytes, options: IterateOptions & CallOptions = {}): AsyncGenerator<KeyValue, void, undefined> {
    const request = rangeRequest(key, { ...options, limit: options.limit ?? 0 });
    const pageSize = options.pageSize ?? 1000;
    if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new InvalidArgumentError("iterate pageSize", `must be a positive integer, got ${String(pageSize)}`);
    let yielded = false;
    try {
      for await (const part of this.rpc().rangeStream(request, callOptions(options))) {
        for (const kv of part.rangeResponse?.kvs ?? []) {
          yielded = true;
          yield new KeyValue(kv);
        }
      }
      return;
    } catch (err) {
      // A server before 3.7 does not know RangeStream, nor does etcd's HTTP gateway: read pages instead.
      if (yielded || !(err instanceof UnsupportedVersionError || err instanceof UnsupportedByTransportError)) throw err;
    }
    yield* this.pages(request, pageSize, options);
  }

  private async *pages(request: Partial<RangeRequest>, pageSize: number, options: CallOptions): AsyncGenerator<KeyValue, void, undefined> {
    let left = request.limit || -1n;
    let next = request;
    for (;;) {
      const size = left >= 0n && left < BigInt(pageSize) ? Number(left) : pageSize;
      const page = await this.rpc().range({ ...next, limit: BigInt(size) }, callOptions(options));
      for (const kv of page.kvs) yield new KeyValue(kv);
      if (left >= 0n) left -= BigInt(page.kvs.length);
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || !last || left === 0n) return;
      // Every later page at the first page's revision (a response header carries the store's
      // current revision, so only the first one is the revision read), just after its last key.
      const after = new Uint8Array(last.key.length + 1);
      after.set(last.key);
      next = { ...next, key: after, revision: next.revision || page.header!.revision };
    }
  }

  /**
   * Writes one key.
   *
   * @throws {@link InvalidArgumentError} for a bad key, value or option, before anything is sent.
   * @throws {@link ErrLeaseNotFound} when `lease` does not exist; {@link ErrKeyNotFound} when
   * `ignoreValue` or `ignoreLease` is given for a key that does not exist.
   * @throws {@link ErrNoSpace} when the database is over its quota.
   * @throws {@link MessageTooLargeError} for a request over `maxCallSendMsgSize`;
   * {@link ErrRequestTooLarge} for one over the server's limit.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`.
   * One whose connection was lost during the call has `noneReachable` false: the put may have
   * been applied. So may one whose deadline passed or whose signal fired after it was sent.
   */
  async put(key: Bytes, value: Bytes, options: PutOptions & CallOptions = {}): Promise<PutResponse> {
    const request = putRequest(key, value, options);
    return putResponse(await this.rpc().put(request, callOptions(options)));
  }

  /**
   * Deletes one key, or a range, prefix or from-key selection of keys.
   *
   * @throws {@link InvalidArgumentError} for a bad key or option, before anything is sent.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`.
   * One whose connection was lost during the call has `noneReachable` false: the delete may have
   * been applied. So may one whose deadline passed or whose signal fired after it was sent.
   */
  async delete(key: Bytes, options: DeleteOptions & CallOptions = {}): Promise<DeleteResponse> {
    const request = deleteRequest(key, options);
    return deleteResponse(await this.rpc().deleteRange(request, callOptions(options)));
  }

  /**
   * Discards the history before `revision`; reads at older revisions then fail with ErrCompacted.
   *
   * @throws {@link InvalidArgumentError} for a negative or non-integer `revision`.
   * @throws {@link ErrCompacted} when `revision` is compacted already; {@link ErrFutureRev} when
   * it is newer than the store.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`.
   */
  async compact(revision: Int64, options: CompactOptions & CallOptions = {}): Promise<CompactResponse> {
    const request = { revision: toNonNegativeInt64(revision, "compact revision"), physical: options.physical ?? false };
    const response = await this.rpc().compact(request, callOptions(options));
    return { header: new ResponseHeader(response.header) };
  }
}

/**
 * The per-call part of an options object, in the transport's terms.
 * @internal
 */
export function callOptions(options: CallOptions): TransportCallOptions & Pick<GrpcCallOptions, "signal" | "metadata"> {
  // Absent, not undefined: nice-grpc spreads these over the client's defaults (callTimeoutMs).
  const result: TransportCallOptions & Pick<GrpcCallOptions, "signal" | "metadata"> = {};
  const signal = checkSignal(options.signal, "signal");
  if (signal !== undefined) result.signal = signal;
  const deadline = checkDeadline(options.deadline, "deadline");
  if (deadline !== undefined) result.deadline = deadline;
  // etcd's "hasleader": the member refuses the call while it has no leader. A Metadata per call,
  // since a middleware may add to it.
  if (options.requireLeader) result.metadata = Metadata({ hasleader: "true" });
  return result;
}
