/** Everything the entry points export except their Client ("etcd-sdk", "etcd-sdk/http2" and "etcd-sdk/web"). */
export type { BaseClient } from "./base-client.js";
export type { Auth, Permission, PermissionType, UserAddOptions } from "./auth.js";
export type { Cluster, Member, MembersResponse } from "./cluster.js";
export { type Alarm, type AlarmMember, type Maintenance, type MemberCallOptions, SnapshotIntegrityError, type StatusResponse } from "./maintenance.js";
export type { ElectionService, LeaderKey, LockService } from "./lockservice.js";
export type { EtcdApi, Keyspace } from "./keyspace.js";
export type { ClientConfig, TlsConfig } from "./config.js";
export type { Bytes } from "./bytes.js";
export type { Int64 } from "./int64.js";
export type {
  KV,
  KeyValue,
  ResponseHeader,
  CallOptions,
  CompactOptions,
  CompactResponse,
  DeleteOptions,
  DeleteResponse,
  GetOptions,
  GetResponse,
  IterateOptions,
  KeySelection,
  PutOptions,
  PutResponse,
  SortOrder,
  SortTarget,
} from "./kv.js";
export type { Lease, LeaseGrantOptions, LeaseGrantResponse, LeaseTimeToLiveResponse } from "./lease.js";
export type { LeaseKeepAlive } from "./keepalive.js";
export { WatchCompactedError, type Watcher, type WatchEvent, type WatchObserver, type WatchOptions, type WatchResponse } from "./watch.js";
export { compare, op } from "./txn.js";
export type {
  Compare,
  Txn,
  CompareOperator,
  CompareSelection,
  DeleteOp,
  GetOp,
  Op,
  OpResult,
  OpResults,
  PutOp,
  TxnOp,
  TxnResponse,
  TxnSpec,
} from "./txn.js";
export * from "./errors.js";
export * from "./concurrency/index.js";
