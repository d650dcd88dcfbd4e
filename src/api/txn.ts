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

export interface GetOp {
  readonly kind: "get";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
export interface PutOp {
  readonly kind: "put";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
export interface DeleteOp {
  readonly kind: "delete";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
}
export interface TxnOp<Then extends readonly Op[] = readonly Op[], Else extends readonly Op[] = readonly Op[]> {
  readonly kind: "txn";
  /** @internal */
  readonly pb: DeepPartial<RequestOp>;
  /** Carried for the result types only. */
  readonly branches?: { then: Then; else: Else };
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
  | { header: ResponseHeader; succeeded: true; results: OpResults<Then> }
  | { header: ResponseHeader; succeeded: false; results: OpResults<Else> };

export interface TxnSpec<Then extends readonly Op[], Else extends readonly Op[]> {
  if?: readonly Compare[];
  then?: Then;
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
  get(key: Bytes, options: GetOptions = {}): GetOp {
    return { kind: "get", pb: { request: { $case: "requestRange", requestRange: rangeRequest(key, options) } } };
  },
  put(key: Bytes, value: Bytes, options: PutOptions = {}): PutOp {
    return { kind: "put", pb: { request: { $case: "requestPut", requestPut: putRequest(key, value, options) } } };
  },
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
 * `else(...)`, each at most once and in that order, then `commit()`.
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

  then<const Ops extends readonly Op[]>(...ops: Ops): Txn<Ops, Else> {
    this.advance(2, "then");
    checkOps(ops, "txn then");
    this.thenOps = ops;
    return this as unknown as Txn<Ops, Else>;
  }

  else<const Ops extends readonly Op[]>(...ops: Ops): Txn<Then, Ops> {
    this.advance(3, "else");
    checkOps(ops, "txn else");
    this.elseOps = ops;
    return this as unknown as Txn<Then, Ops>;
  }

  /** Sends the transaction; etcd applies it atomically at one revision. */
  async commit(options: CallOptions = {}): Promise<TxnResponse<Then, Else>> {
    const request = txnRequest(this.compares, this.thenOps, this.elseOps);
    const response = await this.rpc().txn(request, callOptions(options));
    return txnResponse(response) as TxnResponse<Then, Else>;
  }
}
