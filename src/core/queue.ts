const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * An unbounded queue with one reader: pushes never wait, `next()` waits for an item. Ending it
 * lets the reader drain what is queued; failing it throws after the queued items. A watcher holds
 * one each, so an idle queue keeps no more than a few fields and one waiting promise.
 */
export class AsyncQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  /** The reader's pending `next()`, settled by the next push or the end (two fields, not an object: one less allocation per wait). */
  private resolveReader: ((step: IteratorResult<T, undefined>) => void) | undefined;
  private rejectReader: ((error: unknown) => void) | undefined;
  private closed = false;
  private failure: { error: unknown } | undefined;

  get size(): number {
    return this.items.length - this.head;
  }

  /** Whether a reader waits in `next()`. */
  get waiting(): boolean {
    return this.resolveReader !== undefined;
  }

  /** Whether the queue was ended or failed; `failedWith` says which. */
  get ended(): boolean {
    return this.closed;
  }

  /** What the queue was failed with, if it was. */
  get failedWith(): { error: unknown } | undefined {
    return this.failure;
  }

  push(item: T): void {
    if (this.closed) return;
    const resolve = this.resolveReader;
    if (resolve) {
      this.resolveReader = this.rejectReader = undefined;
      resolve({ done: false, value: item });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    this.closed = true;
    const resolve = this.resolveReader;
    const reject = this.rejectReader;
    this.resolveReader = this.rejectReader = undefined;
    if (!resolve || !reject) return;
    if (this.failure) reject(this.failure.error);
    else resolve(DONE);
  }

  fail(error: unknown): void {
    if (this.closed) return;
    this.failure = { error };
    this.end();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.size > 0) return Promise.resolve({ done: false, value: this.take() });
    if (this.closed) return this.failure ? Promise.reject(this.failure.error) : Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.resolveReader = resolve;
      this.rejectReader = reject;
    });
  }

  private take(): T {
    const item = this.items[this.head] as T;
    // A consumed item must not live on in the array: under load it would outlive a few
    // scavenges and be promoted to the old generation, with the network buffers it views.
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** The oldest queued item, left in the queue. */
  peek(): T | undefined {
    return this.size > 0 ? (this.items[this.head] as T) : undefined;
  }

  /** Lets go of every queued item at once. */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  /** The queued items, oldest first, taken out of the queue; for a reader other than `next()`. */
  *takeAll(): Generator<T, void, undefined> {
    while (this.size > 0) yield this.take();
  }

  /** The items as a stream, for a gRPC request stream. */
  drain(): AsyncGenerator<T, void, undefined>;
  /** The items as a stream, each mapped as it is taken. */
  drain<U>(map: (item: T) => U): AsyncGenerator<U, void, undefined>;
  async *drain(map?: (item: T) => unknown): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      const step = await this.next();
      if (step.done) return;
      yield map ? map(step.value) : step.value;
    }
  }
}
