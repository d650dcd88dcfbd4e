/**
 * The entry point for unit tests ("etcd-sdk/testing"): the SDK's API, and an etcd server in
 * memory whose clients run it unchanged, in Node and in browsers alike.
 */
export * from "./exports.js";
export { MemoryClient, type MemoryClientConfig, MemoryEtcd } from "./client/memory-client.js";
export type { MemoryEtcdOptions } from "./testing/server.js";
export { type Clock, ManualClock } from "./testing/clock.js";
