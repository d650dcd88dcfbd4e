import { AsyncQueue } from "../core/queue.js";

/** Responses a stream holds for a slow reader (a snapshot written to disk) before it stops reading. */
const STREAM_BUFFER = 16;

/** What an aborted call fails with, as nice-grpc's own calls do (the middleware above knows it). */
export function abortError(): Error {
  return Object.assign(new Error("The operation has been aborted"), { name: "AbortError" });
}

/** The wire's side of a streaming call: reading can pause, and the call can be cancelled. */
export interface CallSource {
  pause(): void;
  resume(): void;
  isPaused(): boolean;
  cancel(): void;
}

/** Where the requests of a bidirectional call go. */
export interface RequestSink {
  /** Sends a request; false when the call's buffer is full and `drained()` should be awaited. */
  write(request: unknown): boolean;
  drained(): Promise<unknown>;
  end(): void;
}

/**
 * A streaming call read as an async iterator: the wire pushes its messages into a queue that
 * `next()` reads directly. Reading it through a Node stream and nice-grpc's wrapper put three
 * layers of async generators around every message, which cost a watch event as much CPU as the
 * rest of its way. The call stops reading from the connection while STREAM_BUFFER messages wait
 * for a slow reader.
 */
export class StreamCall implements AsyncIterableIterator<unknown> {
  private readonly queue = new AsyncQueue<unknown>();
  /** Whether the responses ended (or failed, or the reader left): no more requests are sent. */
  finished = false;

  constructor(
    private readonly source: CallSource,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal?.aborted) this.handleEvent();
    else signal?.addEventListener("abort", this, { once: true });
  }

  /** A response arrived. */
  push(message: unknown): void {
    this.queue.push(message);
    if (this.queue.size >= STREAM_BUFFER) this.source.pause();
  }

  /** The responses ended. */
  end(): void {
    this.finish(() => this.queue.end());
  }

  /** The call failed; an aborted call fails as nice-grpc's would, with an AbortError. */
  error(err: unknown): void {
    this.finish(() => this.queue.fail(this.signal?.aborted ? abortError() : err));
  }

  /**
   * The signal's abort listener: the call is cancelled, and reported as an AbortError once its
   * stream closed. Nothing more is sent meanwhile: it would go into a cancelled stream.
   */
  handleEvent(): void {
    this.finished = true;
    this.source.cancel();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, undefined>> {
    if (this.source.isPaused() && this.queue.size < STREAM_BUFFER / 2) this.source.resume();
    return this.queue.next();
  }

  /** The reader left early: the call ends, and nothing more is read. */
  return(): Promise<IteratorResult<unknown, undefined>> {
    this.end();
    this.source.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Fails the call with `err` from the request side: a request that could not be sent. */
  fail(err: unknown): void {
    this.finish(() => this.queue.fail(err));
    this.source.cancel();
  }

  private finish(settle: () => void): void {
    this.finished = true;
    this.signal?.removeEventListener("abort", this);
    settle();
  }
}

/** Writes the requests of a bidirectional call as they come, minding the call's flow control. */
export async function sendRequests(requests: AsyncIterable<unknown>, sink: RequestSink, responses: StreamCall): Promise<void> {
  try {
    for await (const request of requests) {
      if (responses.finished) return;
      if (!sink.write(request)) await sink.drained();
    }
    sink.end();
  } catch (err) {
    if (!responses.finished) responses.fail(err);
  }
}
