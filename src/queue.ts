/**
 * An unbounded queue with one reader: pushes never wait, `next()` waits for an item. Ending it
 * lets the reader drain what is queued; failing it throws after the queued items.
 */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: { error: unknown } | undefined;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.closed = true;
    this.wake?.();
  }

  fail(error: unknown): void {
    if (this.closed) return;
    this.failure = { error };
    this.end();
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    while (this.size === 0 && !this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.size > 0) {
      const item = this.items[this.head++] as T;
      // Drop consumed items now and then so a long-lived queue does not keep them alive.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return { done: false, value: item };
    }
    if (this.failure) throw this.failure.error;
    return { done: true, value: undefined };
  }

  /** The items as a stream, for a gRPC request stream. */
  async *drain(): AsyncGenerator<T, void, undefined> {
    for (;;) {
      const step = await this.next();
      if (step.done) return;
      yield step.value;
    }
  }
}
