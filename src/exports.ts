/** Everything the entry points export except their Client ("etcd-sdk", "etcd-sdk/http2" and "etcd-sdk/web"). */
export type { BaseClient } from "./client/base-client.js";
export type { Auth, AuthResponse, Permission, PermissionType, UserAddOptions } from "./api/auth.js";
export type { Cluster, Member, MembersResponse } from "./api/cluster.js";
export {
  type Alarm,
  type AlarmMember,
  type Maintenance,
  type MemberCallOptions,
  SnapshotIntegrityError,
  type SnapshotOptions,
  type SnapshotProgress,
  type StatusResponse,
  type VersionedSnapshot,
} from "./api/maintenance.js";
export type { ElectionService, LeaderKey, LockService } from "./api/lockservice.js";
export type { EtcdApi, Keyspace } from "./api/keyspace.js";
export type { ClientConfig, RetryPolicy, TlsConfig, Transport } from "./core/config.js";
export { type AutoSyncEvent, type CallContext, CHANNELS, type EndpointEvent, type LeaseEvent, type Logger, type WatchStreamEvent } from "./core/diagnostics.js";
export type { Bytes } from "./core/bytes.js";
export type { Int64 } from "./core/int64.js";
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
} from "./api/kv.js";
export type { KeepAliveOptions, Lease, LeaseGrantOptions, LeaseGrantResponse, LeaseTimeToLiveResponse } from "./api/lease.js";
export type { LeaseKeepAlive } from "./api/keepalive.js";
export { WatchCompactedError, WatchOverflowError, type Watcher, type WatchEvent, type WatchObserver, type WatchOptions, type WatchResponse } from "./api/watch.js";
export { compare, op } from "./api/txn.js";
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
} from "./api/txn.js";
export * from "./core/errors.js";
/** The gRPC status codes that an error's `code` holds, to compare by name: `err.code === Status.UNAVAILABLE`. */
export { Status } from "nice-grpc-common";
export * from "./concurrency/index.js";
export * from "./cache/index.js";
