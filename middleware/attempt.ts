/**
 * Light stand-ins for the async generators that nice-grpc middleware pass up, for the path nearly
 * every unary call takes: it succeeds at once. An async generator per middleware and call costs
 * more CPU than the rest of the call's way through the SDK, so the middleware that only act on a
 * failure (error mapping, retry, failover) hand up one of these and start their generator, if
 * any, once there is a failure.
 */

/** One attempt of a call, as middleware pass it up: nice-grpc's async generator protocol. */
export type Attempt = AsyncGenerator<unknown, unknown, undefined>;

const FINISHED: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** A unary call's response, from the promise the wire gave for it, as a finished attempt. */
class Answer implements Attempt {
  constructor(private response: Promise<unknown> | undefined) {}

  next(): Promise<IteratorResult<unknown, unknown>> {
    const { response } = this;
    this.response = undefined;
    return response ? response.then((value) => ({ done: true, value })) : Promise.resolve(FINISHED);
  }

  return(value: unknown): Promise<IteratorResult<unknown, unknown>> {
    this.response = undefined;
    return Promise.resolve({ done: true, value });
  }

  throw(err: unknown): Promise<IteratorResult<unknown, unknown>> {
    this.response = undefined;
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.response = undefined;
  }
}

/**
 * An attempt passed on as it is until it fails; then `fallback` takes over with the failure: it
 * throws it on, or tries again and answers in its place.
 */
export class UntilFailure implements Attempt {
  private current: Attempt;

  constructor(
    first: Attempt | Promise<unknown>,
    private readonly fallback: (failure: unknown) => Attempt,
  ) {
    this.current = first instanceof Promise ? new Answer(first) : first;
  }

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
