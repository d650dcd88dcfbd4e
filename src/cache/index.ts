export {
  type CacheChangesOptions,
  type CacheClient,
  type CacheGetResult,
  type CacheListOptions,
  type CacheListResult,
  type CacheOptions,
  type CacheReadOptions,
  type CacheRelist,
  type CacheWaitOptions,
  type CacheWatcher,
  createCache,
  type WatchCache,
} from "./cache.js";
export { CacheClosedError, RevisionTooOldError } from "./errors.js";
export type { CacheEvents, CacheFeed, CacheObserver, CacheReset, CacheUpdate } from "./feed.js";
export type { CacheRange } from "./keys.js";
export { type Endpoint, type EndpointList, EndpointManager, type EndpointManagerOptions, type EndpointUpdate, type RegistryClient } from "./registry.js";
