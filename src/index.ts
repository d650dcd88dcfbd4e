export { Client } from "./client.js";
export type { ClientConfig, TlsConfig } from "./config.js";
export type { Bytes } from "./bytes.js";
export type { Int64 } from "./int64.js";
export {
  KV,
  KeyValue,
  ResponseHeader,
  type CallOptions,
  type CompactOptions,
  type CompactResponse,
  type DeleteOptions,
  type DeleteResponse,
  type GetOptions,
  type GetResponse,
  type KeySelection,
  type PutOptions,
  type PutResponse,
  type SortOrder,
  type SortTarget,
} from "./kv.js";
export {
  Compare,
  Txn,
  compare,
  op,
  type CompareOperator,
  type CompareSelection,
  type DeleteOp,
  type GetOp,
  type Op,
  type OpResult,
  type OpResults,
  type PutOp,
  type TxnOp,
  type TxnResponse,
  type TxnSpec,
} from "./txn.js";
export * from "./errors.js";
