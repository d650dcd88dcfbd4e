import { Status } from "nice-grpc-common";
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type CompactionRequest,
  type CompactionResponse,
  type DeepPartial,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  RangeResponse as RangeResponseCodec,
  type RangeStreamResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "../../gen/etcdserverpb/rpc.js";
import type { KeyValue } from "../../gen/mvccpb/kv.js";
import {
  ErrCompacted,
  ErrDuplicateKey,
  ErrEmptyKey,
  ErrFutureRev,
  ErrInvalidSortOption,
  ErrKeyNotFound,
  ErrLeaseNotFound,
  ErrLeaseProvided,
  ErrTooManyOps,
  ErrValueProvided,
} from "../core/errors.js";
import type { Lessor } from "./lessor.js";
import { orderedKey } from "../core/bytes.js";
import { keyRange, type Mvcc } from "./mvcc.js";
import { Refusal, refusal } from "./refusal.js";

/** etcd's --max-txn-ops default: the most compares, or operations in a branch, of a transaction. */
const MAX_TXN_OPS = 128;
/** The keys a RangeStream sends in its first part; etcd then sizes parts to about --max-request-bytes. */
const FIRST_STREAM_PART = 10n;
/** A RangeStream's limit when the request sets none, as etcd's. */
const NO_LIMIT = (1n << 63n) - 1n;

/** A response header that only says the revision, as etcd fills in those of a transaction's operations. */
const revisionOnly = (revision: bigint): ResponseHeader => ({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0n });

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const bigintOrder = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

const SORT_KEYS: Record<RangeRequest_SortTarget, (a: KeyValue, b: KeyValue) => number> = {
  [RangeRequest_SortTarget.KEY]: (a, b) => compareBytes(a.key, b.key),
  [RangeRequest_SortTarget.VERSION]: (a, b) => bigintOrder(a.version, b.version),
  [RangeRequest_SortTarget.CREATE]: (a, b) => bigintOrder(a.createRevision, b.createRevision),
  [RangeRequest_SortTarget.MOD]: (a, b) => bigintOrder(a.modRevision, b.modRevision),
  [RangeRequest_SortTarget.VALUE]: (a, b) => compareBytes(a.value, b.value),
};

/** Whether a range comes back in key order as read, needing no sort. */
function defaultOrdering(r: RangeRequest): boolean {
  return r.sortOrder === RangeRequest_SortOrder.NONE || (r.sortTarget === RangeRequest_SortTarget.KEY && r.sortOrder === RangeRequest_SortOrder.ASCEND);
}

function hasRevisionFilters(r: RangeRequest): boolean {
  return r.minModRevision !== 0n || r.maxModRevision !== 0n || r.minCreateRevision !== 0n || r.maxCreateRevision !== 0n;
}

// The checks etcd's gRPC layer makes before a request goes any further.

function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw refusal(ErrEmptyKey);
  if (!(r.sortOrder in RangeRequest_SortOrder) || !(r.sortTarget in RangeRequest_SortTarget)) throw refusal(ErrInvalidSortOption);
}

function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw refusal(ErrEmptyKey);
  if (r.ignoreValue && r.value.length !== 0) throw refusal(ErrValueProvided);
  if (r.ignoreLease && r.lease !== 0n) throw refusal(ErrLeaseProvided);
}

function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw refusal(ErrEmptyKey);
}

/** etcd's count of a transaction's operations: its compares, or its longer branch. */
function checkTxn(r: TxnRequest, maxOps: number): void {
  const ops = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (ops > maxOps) throw refusal(ErrTooManyOps);
  for (const c of r.compare) if (c.key.length === 0) throw refusal(ErrEmptyKey);
  // A nested transaction may hold what the outer one leaves of the limit, as etcd counts it.
  for (const op of [...r.success, ...r.failure]) checkOp(op, maxOps - ops);
}

function checkOp(op: RequestOp, maxOps: number): void {
  const request = op.request;
  switch (request?.$case) {
    case "requestRange":
      return checkRange(request.requestRange);
    case "requestPut":
      return checkPut(request.requestPut);
    case "requestDeleteRange":
      return checkDelete(request.requestDeleteRange);
    case "requestTxn":
      return checkTxn(request.requestTxn, maxOps);
    default:
      // etcd's answer to an operation that holds none.
      throw refusal(ErrKeyNotFound);
  }
}

/**
 * A span of keys as etcd's duplicate check sees one: [start, end), where an empty end lies past
 * every key. A delete's range end is taken as it comes: a "\0" end (every key from start on)
 * makes an empty span there, so a put next to such a delete is not caught, as in etcd.
 */
interface Span {
  start: string;
  end: string;
}

/** Orders a span's ends, the empty one past every other. */
function compareEnds(a: string, b: string): number {
  if (a === b) return 0;
  if (a === "") return 1;
  if (b === "") return -1;
  return a < b ? -1 : 1;
}

function covers(spans: readonly Span[], key: string): boolean {
  return spans.some((span) => compareEnds(key, span.start) >= 0 && compareEnds(key, span.end) < 0);
}

/**
 * etcd's check that no two operations of a transaction write one key (ErrDuplicateKey): a put
 * and another put, or a put in a delete's range, across nested transactions too; the two
 * branches of one nested transaction may put the same key, as only one of them runs.
 */
function checkDuplicates(ops: readonly RequestOp[]): { puts: Set<string>; deletes: Span[] } {
  const deletes: Span[] = [];
  for (const { request } of ops) {
    if (request?.$case !== "requestDeleteRange") continue;
    const { key, rangeEnd } = request.requestDeleteRange;
    const start = orderedKey(key);
    deletes.push({ start, end: rangeEnd.length === 0 ? `${start}\0` : orderedKey(rangeEnd) });
  }
  const puts = new Set<string>();
  for (const { request } of ops) {
    if (request?.$case !== "requestTxn") continue;
    const then = checkDuplicates(request.requestTxn.success);
    const otherwise = checkDuplicates(request.requestTxn.failure);
    for (const key of then.puts) {
      if (puts.has(key) || covers(deletes, key)) throw refusal(ErrDuplicateKey);
      puts.add(key);
    }
    for (const key of otherwise.puts) {
      if ((puts.has(key) && !then.puts.has(key)) || covers(deletes, key)) throw refusal(ErrDuplicateKey);
      puts.add(key);
    }
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const { request } of ops) {
    if (request?.$case !== "requestPut") continue;
    const key = orderedKey(request.requestPut.key);
    if (puts.has(key) || covers(deletes, key)) throw refusal(ErrDuplicateKey);
    puts.add(key);
  }
  return { puts, deletes };
}

/** Which branch a transaction takes, and those its nested transactions in that branch take. */
interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

function branch(r: TxnRequest, path: TxnPath): RequestOp[] {
  return path.succeeded ? r.success : r.failure;
}

/** Whether a transaction only reads. */
function readOnly(r: TxnRequest): boolean {
  return [...r.success, ...r.failure].every((op) => op.request?.$case === "requestRange");
}

/** etcd's KV service on an Mvcc store: Range, RangeStream, Put, DeleteRange, Txn, Compact. */
export class KvService {
  constructor(
    private readonly store: Mvcc,
    private readonly lessor: Lessor,
    /** The header etcd fills in on each response, with the revision the response gives, or (0n) the store's. */
    private readonly header: (revision: bigint) => ResponseHeader,
    /** etcd's --max-request-bytes: RangeStream sizes its parts to it. */
    private readonly maxRequestBytes: number,
    /** Puts a request of so many bytes in etcd's raft log, which refuses one over --max-request-bytes. */
    private readonly propose: (requestBytes: number) => void,
  ) {}

  range(r: RangeRequest): DeepPartial<RangeResponse> {
    checkRange(r);
    const response = this.execRange(r);
    return { ...response, header: this.header(response.header!.revision) };
  }

  /**
   * Sends a range in parts, all read at the revision of the first (pinned unless the request
   * gives one): the first part of 10 keys, then parts twice or half as large as the last while it
   * was under half or over twice --max-request-bytes. Only the last part carries the header, the
   * count and `more`.
   */
  rangeStream(request: RangeRequest, send: (part: DeepPartial<RangeStreamResponse>) => void): void {
    checkRange(request);
    if (!defaultOrdering(request)) throw new Refusal(Status.UNIMPLEMENTED, "RangeStream does not support custom sort orders");
    if (hasRevisionFilters(request)) throw new Refusal(Status.UNIMPLEMENTED, "RangeStream does not support revision filters");
    const r = { ...request };
    if (r.countOnly) {
      const { header, count } = this.execRange(r);
      return send({ rangeResponse: { header: this.header(header!.revision), count } });
    }
    const totalLimit = r.limit === 0n ? NO_LIMIT : r.limit;
    r.limit = FIRST_STREAM_PART < totalLimit ? FIRST_STREAM_PART : totalLimit;
    let sent = 0n;
    let headerRevision = 0n;
    for (;;) {
      const part = this.execRange(r);
      if (headerRevision === 0n) {
        headerRevision = part.header!.revision;
        if (r.revision === 0n) r.revision = headerRevision;
      }
      const { kvs } = part;
      sent += BigInt(kvs.length);
      const last = kvs[kvs.length - 1];
      const nextKey = part.more && last ? Uint8Array.of(...last.key, 0) : undefined;
      const done = !part.more || sent === totalLimit;
      if (!done) send({ rangeResponse: { kvs } });
      else {
        const rest = nextKey ? this.execRange({ ...r, key: nextKey, limit: 0n, countOnly: true }).count : 0n;
        return send({ rangeResponse: { header: this.header(headerRevision), kvs, more: part.more, count: sent + rest } });
      }
      const size = RangeResponseCodec.encode(RangeResponseCodec.fromPartial(part)).finish().length;
      const target = this.maxRequestBytes;
      let limit = size < Math.floor(target / 2) ? r.limit * 2n : size > target * 2 ? r.limit / 2n : r.limit;
      if (limit === 0n) limit = 1n;
      r.key = nextKey!;
      r.limit = limit < totalLimit - sent ? limit : totalLimit - sent;
    }
  }

  put(r: PutRequest, requestBytes: number): DeepPartial<PutResponse> {
    checkPut(r);
    this.propose(requestBytes);
    this.checkPutApplies(r);
    const response = this.store.write(() => this.execPut(r));
    return { ...response, header: this.header(this.store.revision) };
  }

  deleteRange(r: DeleteRangeRequest, requestBytes: number): DeepPartial<DeleteRangeResponse> {
    checkDelete(r);
    this.propose(requestBytes);
    const response = this.store.write(() => this.execDelete(r));
    return { ...response, header: this.header(response.header!.revision) };
  }

  txn(r: TxnRequest, requestBytes: number): DeepPartial<TxnResponse> {
    checkTxn(r, MAX_TXN_OPS);
    checkDuplicates(r.success);
    checkDuplicates(r.failure);
    // A transaction that only reads is served without the raft log.
    const writes = !readOnly(r);
    if (writes) this.propose(requestBytes);
    // Every compare, nested ones included, sees the store as it was before the transaction.
    const path = this.pathOf(r);
    this.checkApplies(r, path);
    const execute = () => this.execTxn(r, path);
    const { succeeded, responses } = writes ? this.store.write(execute) : execute();
    return { header: this.header(this.store.revision), succeeded, responses };
  }

  compact(r: CompactionRequest, requestBytes: number): DeepPartial<CompactionResponse> {
    this.propose(requestBytes);
    if (r.revision <= this.store.compacted) throw refusal(ErrCompacted);
    if (r.revision > this.store.revision) throw refusal(ErrFutureRev);
    this.store.compact(r.revision);
    return { header: this.header(this.store.revision) };
  }

  /**
   * A range as etcd's store reads it, at the revision reads see now (inside a write, the one it
   * writes): every key of the range, filtered by revision, sorted, then cut at the limit; the
   * count is of every key of the range, whatever filters and limit leave.
   */
  private execRange(r: RangeRequest): RangeResponse {
    const current = this.store.readRevision;
    if (r.revision > current) throw refusal(ErrFutureRev);
    const revision = r.revision <= 0n ? current : r.revision;
    if (revision < this.store.compacted) throw refusal(ErrCompacted);
    let kvs = this.store.range(keyRange(r.key, r.rangeEnd), revision);
    const count = BigInt(kvs.length);
    if (r.countOnly) return { header: revisionOnly(current), kvs: [], more: false, count };
    if (r.maxModRevision !== 0n) kvs = kvs.filter((kv) => kv.modRevision <= r.maxModRevision);
    if (r.minModRevision !== 0n) kvs = kvs.filter((kv) => kv.modRevision >= r.minModRevision);
    if (r.maxCreateRevision !== 0n) kvs = kvs.filter((kv) => kv.createRevision <= r.maxCreateRevision);
    if (r.minCreateRevision !== 0n) kvs = kvs.filter((kv) => kv.createRevision >= r.minCreateRevision);
    // A target other than the key with no order is sorted ascending, as etcd does.
    const order = r.sortTarget !== RangeRequest_SortTarget.KEY && r.sortOrder === RangeRequest_SortOrder.NONE ? RangeRequest_SortOrder.ASCEND : r.sortOrder;
    if (!defaultOrdering({ ...r, sortOrder: order })) {
      const byTarget = SORT_KEYS[r.sortTarget];
      kvs = [...kvs].sort(order === RangeRequest_SortOrder.DESCEND ? (a, b) => byTarget(b, a) : byTarget);
    }
    const more = r.limit > 0n && kvs.length > r.limit;
    if (more) kvs = kvs.slice(0, Number(r.limit));
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array() }));
    return { header: revisionOnly(current), kvs, more, count };
  }

  /** What etcd checks of a put as it applies it: the lease exists, and a key to keep a value or lease of. */
  private checkPutApplies(r: PutRequest): void {
    if (r.lease !== 0n && !this.lessor.lookup(r.lease)) throw refusal(ErrLeaseNotFound);
    if ((r.ignoreValue || r.ignoreLease) && !this.previous(r)) throw refusal(ErrKeyNotFound);
  }

  private previous(r: PutRequest): KeyValue | undefined {
    return this.store.get(orderedKey(r.key), this.store.readRevision);
  }

  /** A put inside a write. */
  private execPut(r: PutRequest): PutResponse {
    const previous = this.previous(r);
    const value = r.ignoreValue ? previous!.value : r.value;
    const lease = r.ignoreLease ? previous!.lease : r.lease;
    this.store.put(r.key, value, lease);
    return { header: revisionOnly(this.store.readRevision), prevKv: r.prevKv ? previous : undefined };
  }

  /** A delete inside a write; its header's revision is 0n when nothing was written yet, as etcd's. */
  private execDelete(r: DeleteRangeRequest): DeleteRangeResponse {
    const range = keyRange(r.key, r.rangeEnd);
    const prevKvs = r.prevKv ? this.store.range(range, this.store.readRevision) : [];
    const deleted = this.store.deleteRange(range);
    const written = this.store.readRevision !== this.store.revision;
    return { header: revisionOnly(written ? this.store.readRevision : 0n), deleted: BigInt(deleted), prevKvs };
  }

  private pathOf(r: TxnRequest): TxnPath {
    const succeeded = r.compare.every((c) => this.holds(c));
    const ops = succeeded ? r.success : r.failure;
    return { succeeded, nested: ops.flatMap((op) => (op.request?.$case === "requestTxn" ? [this.pathOf(op.request.requestTxn)] : [])) };
  }

  /**
   * Whether a compare holds for every key of its range. A missing key compares as a key of
   * version, revisions and lease 0, except on its value: a compare of the value of a key that
   * does not exist fails, whatever it says.
   */
  private holds(c: Compare): boolean {
    const kvs = this.store.range(keyRange(c.key, c.rangeEnd), this.store.revision);
    if (kvs.length === 0) {
      if (c.target === Compare_CompareTarget.VALUE) return false;
      return this.compareKv(c, { key: c.key, value: new Uint8Array(), createRevision: 0n, modRevision: 0n, version: 0n, lease: 0n });
    }
    return kvs.every((kv) => this.compareKv(c, kv));
  }

  private compareKv(c: Compare, kv: KeyValue): boolean {
    // A compare whose target's value is missing (another one is set) compares with the zero value.
    const given = c.targetUnion;
    let order: number;
    switch (c.target) {
      case Compare_CompareTarget.VALUE:
        order = compareBytes(kv.value, given?.$case === "value" ? given.value : new Uint8Array());
        break;
      case Compare_CompareTarget.VERSION:
        order = bigintOrder(kv.version, given?.$case === "version" ? given.version : 0n);
        break;
      case Compare_CompareTarget.CREATE:
        order = bigintOrder(kv.createRevision, given?.$case === "createRevision" ? given.createRevision : 0n);
        break;
      case Compare_CompareTarget.MOD:
        order = bigintOrder(kv.modRevision, given?.$case === "modRevision" ? given.modRevision : 0n);
        break;
      case Compare_CompareTarget.LEASE:
        order = bigintOrder(kv.lease, given?.$case === "lease" ? given.lease : 0n);
        break;
      default:
        order = 0;
    }
    switch (c.result) {
      case Compare_CompareResult.EQUAL:
        return order === 0;
      case Compare_CompareResult.NOT_EQUAL:
        return order !== 0;
      case Compare_CompareResult.GREATER:
        return order > 0;
      case Compare_CompareResult.LESS:
        return order < 0;
      default:
        return true;
    }
  }

  /** What etcd checks of the branches a transaction takes before it writes anything. */
  private checkApplies(r: TxnRequest, path: TxnPath): void {
    let nested = 0;
    for (const { request } of branch(r, path)) {
      switch (request?.$case) {
        case "requestRange": {
          const { revision } = request.requestRange;
          if (revision === 0n) break;
          if (revision > this.store.revision) throw refusal(ErrFutureRev);
          if (revision < this.store.compacted) throw refusal(ErrCompacted);
          break;
        }
        case "requestPut":
          this.checkPutApplies(request.requestPut);
          break;
        case "requestTxn":
          this.checkApplies(request.requestTxn, path.nested[nested++]!);
          break;
      }
    }
  }

  /** Runs the branch a transaction takes; its nested transactions' headers are left empty, as etcd leaves them. */
  private execTxn(r: TxnRequest, path: TxnPath): { succeeded: boolean; responses: DeepPartial<ResponseOp>[] } {
    let nested = 0;
    const responses = branch(r, path).map(({ request }): DeepPartial<ResponseOp> => {
      switch (request?.$case) {
        case "requestRange":
          return { response: { $case: "responseRange", responseRange: this.execRange(request.requestRange) } };
        case "requestPut":
          return { response: { $case: "responsePut", responsePut: this.execPut(request.requestPut) } };
        case "requestDeleteRange":
          return { response: { $case: "responseDeleteRange", responseDeleteRange: this.execDelete(request.requestDeleteRange) } };
        case "requestTxn":
          return { response: { $case: "responseTxn", responseTxn: { header: {}, ...this.execTxn(request.requestTxn, path.nested[nested++]!) } } };
        default:
          return { response: undefined };
      }
    });
    return { succeeded: path.succeeded, responses };
  }
}
