import {
  type Compare as ComparePb,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeepPartial,
  type KVDefinition,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse as TxnResponsePb,
} from "../../gen/etcdserverpb/rpc.js";
import { type Bytes, describe, toBytes } from "../core/bytes.js";
import { InvalidArgumentError } from "../core/errors.js";
import { type Int64, toInt64 } from "../core/int64.js";
import {
  type CallOptions,
  callOptions,
  type DeleteOptions,
  type DeleteResponse,
  deleteRequest,
  deleteResponse,
  type GetOptions,
  type GetResponse,
  getResponse,
  type PutOptions,
  type PutResponse,
  putRequest,
  putResponse,
  rangeRequest,
  ResponseHeader,
  selectKeys,
} from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

/** How a condition compares the key's field with the value given. */
export type CompareOperator = "=" | "!=" | "<" | ">";

/** A condition of a transaction; build one with the `compare` helpers. */
export class Compare {
  /** @internal */
  constructor(
    /** @internal */
    readonly pb: DeepPartial<ComparePb>,
  ) {}
}

/** Compares may cover a range or prefix of keys instead of one key: all of them must match. */
export type CompareSelection = Pick<GetOptions, "end" | "prefix">;

const OPERATORS: Record<CompareOperator, Compare_CompareResult> = {
  "=": Compare_CompareResult.EQUAL,
  "!=": Compare_CompareResult.NOT_EQUAL,
  "<": Compare_CompareResult.LESS,
  ">": Compare_CompareResult.GREATER,
};

function comparison(
  key: Bytes,
  operator: CompareOperator,
  target: Compare_CompareTarget,
  targetUnion: ComparePb["targetUnion"],
  selection: CompareSelection,
): Compare {
  if (typeof operator !== "string" || !Object.hasOwn(OPERATORS, operator)) {
    throw new InvalidArgumentError("compare operator", `must be one of =, !=, <, >, got ${describe(operator)}`);
  }
  const { key: wireKey, rangeEnd } = selectKeys(key, selection, "compare");
  return new Compare({ key: wireKey, rangeEnd, result: OPERATORS[operator], target, targetUnion });
}

/** Builders of transaction conditions, one per field of a key that etcd can compare. */
export const compare = {
  /** The key's value compared bytewise with `value`. */
  value(key: Bytes, operator: CompareOperator, value: Bytes, selection: CompareSelection = {}): Compare {
    const bytes = toBytes(value, "compare value");
    return comparison(key, operator, Compare_CompareTarget.VALUE, { $case: "value", value: bytes }, selection);
  },
  /** The key's version: 0 when the key does not exist. */
  version(key: Bytes, operator: CompareOperator, version: Int64, selection: CompareSelection = {}): Compare {
    const v = toInt64(version, "compare version");
    return comparison(key, operator, Compare_CompareTarget.VERSION, { $case: "version", version: v }, selection);
  },
  /** The revision of the key's creation: 0 when the key does not exist. */
  createRevision(key: Bytes, operator: CompareOperator, revision: Int64, selection: CompareSelection = {}): Compare {
    const r = toInt64(revision, "compare createRevision");
    return comparison(key, operator, Compare_CompareTarget.CREATE, { $case: "createRevision", createRevision: r }, selection);
  },
  /** The revision of the key's last change: 0 when the key does not exist. */
  modRevision(key: Bytes, operator: CompareOperator, revision: Int64, selection: CompareSelection = {}): Compare {
    const r = toInt64(revision, "compare modRevision");
    return comparison(key, operator, Compare_CompareTarget.MOD, { $case: "modRevision", modRevision: r }, selection);
  },
  /** The lease the key is attached to: 0 for none. */
  lease(key: Bytes, operator: CompareOperator, lease: Int64, selection: CompareSelection = {}): Compare {
    const l = toInt64(lease, "compare lease");
    return comparison(key, operator, Compare_CompareTarget.LEASE, { $case: "lease", lease: l }, selection);
  },
};

/** A read in a transaction branch, made by `op.get`; its result is a {@link GetResponse}. */
export interface GetOp {
  /** Tells the operations apart, for the result types. */
  readonly kind: "get";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
/** A write in a transaction branch, made by `op.put`; its result is a {@link PutResponse}. */
export interface PutOp {
  /** Tells the operations apart, for the result types. */
  readonly kind: "put";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
/** A delete in a transaction branch, made by `op.delete`; its result is a {@link DeleteResponse}. */
export interface DeleteOp {
  /** Tells the operations apart, for the result types. */
  readonly kind: "delete";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
/** A nested transaction in a branch, made by `op.txn`; its result is a {@link TxnResponse}. */
export interface TxnOp<Then extends readonly Op[] = readonly Op[], Else extends readonly Op[] = readonly Op[]> {
  /** Tells the operations apart, for the result types. */
  readonly kind: "txn";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
  /** Carried for the result types only. */
  readonly branches?: {
    /** The operations run when the nested conditions hold. */
    then: Then;
    /** The operations run otherwise. */
    else: Else;
  };
}
/** One operation of a transaction branch; build one with the `op` helpers. */
export type Op = GetOp | PutOp | DeleteOp | TxnOp;

/** What an operation yields when its branch runs. */
export type OpResult<O extends Op> = O extends GetOp
  ? GetResponse
  : O extends PutOp
    ? PutResponse
    : O extends DeleteOp
      ? DeleteResponse
      : O extends TxnOp<infer Then, infer Else>
        ? TxnResponse<Then, Else>
        : never;

/** The results of a branch, position by position, typed after its operations. */
export type OpResults<Ops extends readonly Op[]> = { -readonly [K in keyof Ops]: OpResult<Ops[K]> };

/** The outcome of a transaction: which branch ran, with that branch's results. */
export type TxnResponse<Then extends readonly Op[] = readonly Op[], Else extends readonly Op[] = readonly Op[]> =
  | {
      /** Which member answered, and the store's revision after the transaction. */
      header: ResponseHeader;
      /** The conditions held: the `then` branch ran. */
      succeeded: true;
      /** The `then` branch's results, one per operation. */
      results: OpResults<Then>;
    }
  | {
      /** Which member answered, and the store's revision after the transaction. */
      header: ResponseHeader;
      /** A condition failed: the `else` branch ran. */
      succeeded: false;
      /** The `else` branch's results, one per operation. */
      results: OpResults<Else>;
    };

/** A nested transaction, as `op.txn` takes it. */
export interface TxnSpec<Then extends readonly Op[], Else extends readonly Op[]> {
  /** Conditions that must all hold for `then` to run; none means they hold. */
  if?: readonly Compare[];
  /** The operations run when the conditions hold. */
  then?: Then;
  /** The operations run otherwise. */
  else?: Else;
}

function checkOps(ops: readonly Op[], what: string): void {
  ops.forEach((o, i) => {
    if (o === null || typeof o !== "object" || !("pb" in o) || !("kind" in o)) {
      throw new InvalidArgumentError(`${what}[${i}]`, `must be an operation built with op.get/put/delete/txn, got ${describe(o)}`);
    }
  });
}

function checkCompares(compares: readonly Compare[]): void {
  compares.forEach((c, i) => {
    if (!(c instanceof Compare)) {
      throw new InvalidArgumentError(`txn if[${i}]`, `must be a condition built with compare.*, got ${describe(c)}`);
    }
  });
}

function txnRequest(compares: readonly Compare[], then: readonly Op[], otherwise: readonly Op[]): DeepPartial<TxnRequest> {
  checkCompares(compares);
  checkOps(then, "txn then");
  checkOps(otherwise, "txn else");
  return { compare: compares.map((c) => c.pb), success: then.map((o) => o.pb), failure: otherwise.map((o) => o.pb) };
}

/** Builders of transaction operations. */
export const op = {
  /** A read of one key, or a range, prefix or from-key selection, as {@link KV.get}. */
  get(key: Bytes, options: GetOptions = {}): GetOp {
    return { kind: "get", pb: { request: { $case: "requestRange", requestRange: rangeRequest(key, options) } } };
  },
  /** A write of one key, as {@link KV.put}. */
  put(key: Bytes, value: Bytes, options: PutOptions = {}): PutOp {
    return { kind: "put", pb: { request: { $case: "requestPut", requestPut: putRequest(key, value, options) } } };
  },
  /** A delete of one key, or a range, prefix or from-key selection, as {@link KV.delete}. */
  delete(key: Bytes, options: DeleteOptions = {}): DeleteOp {
    return { kind: "delete", pb: { request: { $case: "requestDeleteRange", requestDeleteRange: deleteRequest(key, options) } } };
  },
  /** A nested transaction (etcd 3.3+): its compares are evaluated when its branch runs. */
  txn<const Then extends readonly Op[] = [], const Else extends readonly Op[] = []>(spec: TxnSpec<Then, Else>): TxnOp<Then, Else> {
    const request = txnRequest(spec.if ?? [], spec.then ?? [], spec.else ?? []);
    return { kind: "txn", pb: { request: { $case: "requestTxn", requestTxn: request } } };
  },
};

function opResult(pb: ResponseOp): OpResult<Op> {
  const response = pb.response;
  switch (response?.$case) {
    case "responseRange":
      return getResponse(response.responseRange);
    case "responsePut":
      return putResponse(response.responsePut);
    case "responseDeleteRange":
      return deleteResponse(response.responseDeleteRange);
    case "responseTxn":
      return txnResponse(response.responseTxn);
    default:
      throw new InvalidArgumentError("txn response", "holds an operation result of unknown kind");
  }
}

function txnResponse(pb: TxnResponsePb): TxnResponse {
  return {
    header: new ResponseHeader(pb.header),
    succeeded: pb.succeeded,
    results: pb.responses.map(opResult),
  } as TxnResponse;
}

/**
 * A transaction under construction, as clientv3's Txn: `if(...)`, then `then(...)`, then
 * `else(...)`, each at most once and in that order, then `commit()`. Start one with
 * {@link BaseClient.txn | client.txn()}, which has an example. The builders throw
 * InvalidArgumentError at once for a stage out of order or an argument not built with
 * {@link compare} or {@link op}. Awaiting the builder itself (it has a `then` method) fails
 * too: call `commit()`.
 */
export class Txn<Then extends readonly Op[] = [], Else extends readonly Op[] = []> {
  private stage: 0 | 1 | 2 | 3 = 0;
  private compares: readonly Compare[] = [];
  private thenOps: readonly Op[] = [];
  private elseOps: readonly Op[] = [];

  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof KVDefinition>) {}

  private advance(to: 1 | 2 | 3, name: string): void {
    if (this.stage >= to) throw new InvalidArgumentError(`txn.${name}()`, "was called after itself or a later stage; call if, then, else once each, in order");
    this.stage = to;
  }

  /** Conditions that must all hold for the `then` branch to run. */
  if(...compares: Compare[]): this {
    this.advance(1, "if");
    checkCompares(compares);
    this.compares = compares;
    return this;
  }

  /** Operations to run when the conditions hold; `commit()` types their results after them. */
  then<const Ops extends readonly Op[]>(...ops: Ops): Txn<Ops, Else> {
    this.advance(2, "then");
    checkOps(ops, "txn then");
    this.thenOps = ops;
    return this as unknown as Txn<Ops, Else>;
  }

  /** Operations to run when a condition fails; `commit()` types their results after them. */
  else<const Ops extends readonly Op[]>(...ops: Ops): Txn<Then, Ops> {
    this.advance(3, "else");
    checkOps(ops, "txn else");
    this.elseOps = ops;
    return this as unknown as Txn<Then, Ops>;
  }

  /**
   * Sends the transaction; etcd applies it atomically at one revision.
   *
   * @throws {@link InvalidArgumentError} for a bad condition or operation, before anything is sent.
   * @throws {@link ErrDuplicateKey} when a branch writes one key twice; {@link ErrTooManyOps} when
   * a branch is over the server's --max-txn-ops.
   * @throws {@link ErrLeaseNotFound} when a put names a lease that does not exist;
   * {@link ErrCompacted} when a read asks for a compacted revision.
   * @throws {@link DeadlineExceededError} when `deadline` (or `callTimeoutMs`) passes first.
   * @throws {@link CallCanceledError} when `signal` fires first.
   * @throws {@link EndpointError} when no endpoint can be reached within `dialTimeoutMs`. One
   * whose connection was lost during the call has `noneReachable` false: the transaction may have
   * been applied. So may one whose deadline passed or whose signal fired after it was sent.
   */
  async commit(options: CallOptions = {}): Promise<TxnResponse<Then, Else>> {
    const request = txnRequest(this.compares, this.thenOps, this.elseOps);
    const response = await this.rpc().txn(request, callOptions(options));
    return txnResponse(response) as TxnResponse<Then, Else>;
  }
}
