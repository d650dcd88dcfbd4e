import { EtcdError } from "../core/errors.js";

/** A read, a wait or a feed was asked of a cache after its close() (or after its AbortSignal fired). */
export class CacheClosedError extends EtcdError {
  override name = "CacheClosedError";
  constructor() {
    super("the cache is closed");
  }
}

/**
 * `changes({ fromRevision })` asked for changes older than the cache's window of recent events
 * still holds. Read the cache (`list()`) for the current state and follow it from the revision
 * after the one that read reflects.
 */
export class RevisionTooOldError extends EtcdError {
  override name = "RevisionTooOldError";
  constructor(
    /** The revision asked for. */
    readonly revision: bigint,
    /** The oldest revision the cache can replay changes from. */
    readonly oldestRevision: bigint,
  ) {
    super(`the cache holds changes from revision ${oldestRevision} on; revision ${revision} is older`);
  }
}
