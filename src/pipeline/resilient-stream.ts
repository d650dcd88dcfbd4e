import { Status } from "nice-grpc-common";
import { EndpointError, EtcdServerError, TransportError } from "../core/errors.js";
import { AsyncQueue } from "../core/queue.js";
import { unref } from "../core/timers.js";
import { EndpointStalled } from "../core/stalled.js";

export interface StreamHandlers<Req, Res, Queued> {
  /** Whether anyone still needs the stream. */
  wanted(): boolean;
  /**
   * The request for a queued item, built when the stream takes it: a burst of sends (10k
   * watchers created at once) then holds small items meanwhile, not whole requests.
   */
  request(item: Queued): Req;
  /** Starts the RPC with a request stream of our own. */
  open(requests: AsyncIterable<Req>, signal: AbortSignal): AsyncIterable<Res>;
  /** A stream was (re)opened: send it what it must know. */
  opened(): void;
  received(response: Res): void;
  /** The stream broke; true to open it again (on another member if need be). */
  failed(err: unknown): boolean;
}

/** Failures after which a stream is opened again (on another member if need be). */
export function worthReconnecting(err: unknown): boolean {
  if (err instanceof EndpointError) return true;
  // Internal covers a stream reset by the server or a proxy, which clientv3 also reconnects after.
  if (err instanceof TransportError || err instanceof EtcdServerError) return err.code === Status.UNAVAILABLE || err.code === Status.INTERNAL;
  return false;
}

export interface StreamOptions {
  /**
   * The longest wait between attempts to open the stream, in ms; the wait starts at 100 ms and
   * doubles up to it. 2000 by default.
   */
  maxBackoffMs?: number;
}

/** The abort reason of a stream that ended on its own (not by restart()). */
const BROKEN = Symbol("broken");
const FIRST_BACKOFF_MS = 100;

/**
 * One bidirectional stream (watch, lease keep-alive) kept open while it is wanted: when it breaks
 * it is opened again after a backoff, and `opened` lets its owner restore what the server forgot.
 */
export class ResilientStream<Req, Res, Queued = Req> {
  private stream: { requests: AsyncQueue<Queued>; abort: AbortController } | undefined;
  private running = false;

  private readonly maxBackoffMs: number;

  constructor(
    private readonly handlers: StreamHandlers<Req, Res, Queued>,
    { maxBackoffMs = 2000 }: StreamOptions = {},
  ) {
    this.maxBackoffMs = maxBackoffMs;
  }

  /** Queues a request on the open stream; false when none is open (`opened` will catch up). */
  send(item: Queued): boolean {
    this.stream?.requests.push(item);
    return this.stream !== undefined;
  }

  /** Opens the stream unless it is open or opening. */
  start(): void {
    if (!this.running) void this.run();
  }

  /** Ends the current stream; it is opened again only while still wanted. */
  restart(): void {
    this.stream?.abort.abort();
  }

  /**
   * Ends the current stream because its endpoint stopped answering it: it is opened again at
   * once, and the pipeline sends it to another endpoint (see EndpointStalled).
   */
  abandon(why: string): void {
    this.stream?.abort.abort(new EndpointStalled(why));
  }

  private async run(): Promise<void> {
    this.running = true;
    let backoff = FIRST_BACKOFF_MS;
    try {
      while (this.handlers.wanted()) {
        const requests = new AsyncQueue<Queued>();
        const abort = new AbortController();
        this.stream = { requests, abort };
        this.handlers.opened();
        let again = true;
        try {
          for await (const response of this.handlers.open(requests.drain((item) => this.handlers.request(item)), abort.signal)) {
            backoff = FIRST_BACKOFF_MS;
            this.handlers.received(response);
          }
        } catch (err) {
          if (!abort.signal.aborted && this.handlers.wanted()) again = this.handlers.failed(err);
        } finally {
          requests.end();
          abort.abort(BROKEN);
          this.stream = undefined;
        }
        if (!again || !this.handlers.wanted()) break;
        // A stream we ended ourselves (the last user left, then a new one came) reopens at once.
        if (abort.signal.reason !== BROKEN) continue;
        await new Promise((resolve) => unref(setTimeout(resolve, backoff)));
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    } finally {
      this.running = false;
    }
    // Someone may have wanted the stream again while the loop was on its way out.
    if (this.handlers.wanted()) void this.run();
  }
}
