/**
 * Light stand-ins for the async generators that nice-grpc middleware pass up, for the path nearly
 * every unary call takes: it succeeds at once. An async generator per middleware and call costs
 * more CPU than the rest of the call's way through the SDK, so the middleware that only act on a
 * failure (error mapping, retry, failover) hand up one of these and start their generator, if
 * any, once there is a failure.
 */

/** One attempt of a call, as middleware pass it up: nice-grpc's async generator protocol. */
export type Attempt = AsyncGenerator<unknown, unknown, undefined>;

/** What a middleware does with a failed attempt: throws the failure on, or tries again in its place. */
export type Fallback = (failure: unknown) => Attempt;

const FINISHED: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A unary call's attempt: the promise the wire gave for its response. The middleware above that
 * act only on a failure add their fallback to it instead of wrapping it, so a response reaches
 * the caller in one step however many of them there are, not in one promise step per middleware.
 */
class Answer implements Attempt {
  /** Innermost first: each one gets the failure of the attempt below it. */
  readonly fallbacks: Fallback[] = [];
  /** Whether the response was handed on; from then on the attempt is finished. */
  taken = false;

  constructor(
    private readonly response: Promise<unknown>,
    private readonly path: string,
    private readonly answered: (() => void) | undefined,
  ) {}

  /** The response, after the fallbacks have had their turn with a failure. */
  take(): Promise<unknown> {
    this.taken = true;
    const { response, fallbacks, path, answered } = this;
    if (fallbacks.length === 0 && answered === undefined) return response;
    return response.then(
      (value) => {
        answered?.();
        return value;
      },
      (failure: unknown) => recover(failure, fallbacks, path),
    );
  }

  next(): Promise<IteratorResult<unknown, unknown>> {
    return this.taken ? Promise.resolve(FINISHED) : this.take().then((value) => ({ done: true, value }));
  }

  return(value: unknown): Promise<IteratorResult<unknown, unknown>> {
    this.taken = true;
    return Promise.resolve({ done: true, value });
  }

  throw(err: unknown): Promise<IteratorResult<unknown, unknown>> {
    this.taken = true;
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.taken = true;
  }
}

async function recover(failure: unknown, fallbacks: readonly Fallback[], path: string): Promise<unknown> {
  for (const fallback of fallbacks) {
    try {
      return await unaryResponse(fallback(failure), path);
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}

/** The attempt of a unary call to `path` whose response the wire promised; `answered` runs when it arrives. */
export function answer(response: Promise<unknown>, path: string, answered?: () => void): Attempt {
  return new Answer(response, path, answered);
}

/** What an attempt of a unary call to `path` (the chain of middleware below) answered. */
export function unaryResponse(attempt: Attempt, path: string): Promise<unknown> {
  if (attempt instanceof Answer && !attempt.taken) return attempt.take();
  return attempt.next().then(async (step) => {
    if (step.done && step.value != null) return step.value;
    await attempt.return(undefined);
    throw new Error(`a middleware ${step.done ? "returned nothing" : "yielded a message"} for ${path}, which has a single response`);
  });
}

/**
 * An attempt passed on as it is until it fails; then `fallback` takes over with the failure: it
 * throws it on, or tries again and answers in its place.
 */
class UntilFailure implements Attempt {
  constructor(
    private current: Attempt,
    private readonly fallback: Fallback,
  ) {}

  next(): Promise<IteratorResult<unknown, unknown>> {
    return this.current.next().catch((failure: unknown) => {
      this.current = this.fallback(failure);
      return this.current.next();
    });
  }

  return(value: unknown): Promise<IteratorResult<unknown, unknown>> {
    return this.current.return(value);
  }

  throw(err: unknown): Promise<IteratorResult<unknown, unknown>> {
    return this.current.throw(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.current.return(undefined);
  }
}

/** `attempt` passed on until it fails, when `fallback` takes over with the failure. */
export function untilFailure(attempt: Attempt, fallback: Fallback): Attempt {
  if (attempt instanceof Answer && !attempt.taken) {
    attempt.fallbacks.push(fallback);
    return attempt;
  }
  return new UntilFailure(attempt, fallback);
}
