import type { CacheEvents } from "./feed.js";

/**
 * The most recent changes, whole revisions oldest first, holding at most `maxEvents` events: what
 * a feed started at an earlier revision replays. The oldest revisions go first when it is full.
 */
export class ChangeWindow {
  private revisions: CacheEvents[] = [];
  private head = 0;
  private events = 0;
  /** The oldest revision from which every change is still here. */
  private from: bigint;

  constructor(
    private readonly maxEvents: number,
    from: bigint,
  ) {
    this.from = from;
  }

  /** The oldest revision a replay can start at. */
  get oldest(): bigint {
    return this.from;
  }

  push(change: CacheEvents): void {
    this.revisions.push(change);
    this.events += change.events.length;
    while (this.events > this.maxEvents && this.head < this.revisions.length) {
      const dropped = this.revisions[this.head]!;
      this.revisions[this.head++] = undefined as unknown as CacheEvents;
      this.events -= dropped.events.length;
      this.from = dropped.revision + 1n;
    }
    // Let go of the dropped slots once they are most of the array, not one by one.
    if (this.head > 1024 && this.head * 2 > this.revisions.length) {
      this.revisions = this.revisions.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets every change: the history before `from` is not continuous with what follows. */
  reset(from: bigint): void {
    this.revisions = [];
    this.head = 0;
    this.events = 0;
    this.from = from;
  }

  /** The changes at `revision` and after, oldest first. */
  since(revision: bigint): CacheEvents[] {
    let low = this.head;
    let high = this.revisions.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.revisions[mid]!.revision < revision) low = mid + 1;
      else high = mid;
    }
    return this.revisions.slice(low);
  }
}
