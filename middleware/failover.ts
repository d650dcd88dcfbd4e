import { type CallOptions, ClientError, type ClientMiddleware, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import type { EndpointSet } from "../src/endpoint-rotation.js";
import { EndpointError } from "../src/errors.js";
import { abortable } from "./abortable.js";
import { answer, untilFailure } from "./attempt.js";

/**
 * Sends one attempt of a call to an endpoint (host:port): a promise for unary calls, a stream
 * otherwise; undefined when the endpoint has left the list meanwhile (nothing was sent).
 */
export type Dispatch = (endpoint: string, path: string, request: unknown, options: CallOptions) => Promise<unknown> | AsyncIterable<unknown> | undefined;

/** A per-call option: send the call to this endpoint (host:port) only. */
export interface EndpointOption {
  endpoint?: string;
}

export interface FailoverOptions {
  pool: EndpointSet;
  /** How long an attempt waits for its endpoint to connect before moving on, in ms. */
  dialTimeoutMs: number;
  dispatch: Dispatch;
}

const answeredBy = new WeakMap<object, string>();

/** The endpoint (host:port) that an error came from, when one was reached. */
export function endpointOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null ? answeredBy.get(err) : undefined;
}

/**
 * Details of a call that never got a connection, so never reached a server: as grpc-js words it,
 * and as the gateway wire words a refused connection; and of a stream the server refused before
 * reading it (RST_STREAM REFUSED_STREAM, as on a member shutting down).
 */
const NOT_CONNECTED = /^(round_robin: )?No connection established|^Stream refused by server/;
/** Details of a call whose HTTP/2 stream grpc-js could not even open (a connection closing meanwhile). */
const NOT_STARTED = /^Failed to start HTTP\/2 stream/;

function neverSent(err: unknown): boolean {
  if (!(err instanceof ClientError)) return false;
  return (err.code === Status.UNAVAILABLE && NOT_CONNECTED.test(err.details)) || (err.code === Status.INTERNAL && NOT_STARTED.test(err.details));
}

/** Failures that say this member cannot serve now: no connection, no leader, stopped, overloaded. */
function memberCannotServe(err: unknown): boolean {
  return err instanceof ClientError && err.code === Status.UNAVAILABLE;
}

const RECONNECT_PAUSE_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** No endpoint tried yet, for the usual call. */
const NONE_TRIED: ReadonlySet<string> = new Set();

/**
 * The innermost middleware: chooses the endpoint for each attempt of a call and sends it there
 * instead of calling `next`. An attempt that could not even connect is moved to the next endpoint
 * at once, whatever the call, because it provably never reached a server; any other failure is
 * returned to the retry middleware above, which repeats only calls that change nothing. Members
 * that fail with Unavailable (no connection, no leader, stopped) are passed over for a while.
 */
export function failoverMiddleware({ pool, dialTimeoutMs, dispatch }: FailoverOptions): ClientMiddleware {
  /** Records an attempt's failure at `endpoint`; throws it on unless the call may go to another endpoint. */
  function failedAt(endpoint: string, err: unknown, requestStream: boolean): ClientError {
    if (typeof err === "object" && err !== null) answeredBy.set(err, endpoint);
    if (memberCannotServe(err)) pool.markFailed(endpoint);
    // A request stream may have been read already; its owner (watch, keep-alive) starts anew.
    if (!neverSent(err) || requestStream) throw err;
    return err as ClientError;
  }

  /** Every attempt of a call, or those after a first one that failed at `first.endpoint`. */
  async function* attempts(call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions & EndpointOption, first?: { endpoint: string; failure: unknown }) {
    // A call for one member (its status, defragmenting it) goes there or fails; no failover.
    const only = options.endpoint;
    const others = () => new Set<string>(only === undefined ? [] : pool.endpoints.filter((e) => e !== only));
    let tried = others();
    if (only !== undefined && !pool.endpoints.includes(only)) {
      throw new EndpointError(`${only} is not one of the client's endpoints (${pool.endpoints.join(", ")})`, Status.INVALID_ARGUMENT, only);
    }
    const started = Date.now();
    let lastError: ClientError | undefined;
    if (first) {
      tried.add(first.endpoint);
      lastError = failedAt(first.endpoint, first.failure, call.requestStream);
    }
    for (;;) {
      const endpoint = pool.pick(tried, only === undefined);
      if (endpoint === undefined) {
        // Every endpoint was tried and none could be reached. Keep trying until the dial timeout,
        // then fail for good: an EndpointError is no ClientError, so the retry middleware lets it pass.
        const left = dialTimeoutMs - (Date.now() - started);
        if (left <= 0) {
          const reason = lastError?.details ?? "no endpoint configured";
          const where = only ?? [...tried].join(", ");
          throw new EndpointError(`no etcd server reachable at ${where} within ${dialTimeoutMs} ms: ${reason}`, Status.UNAVAILABLE, only ?? [...tried].pop(), {
            cause: lastError,
          });
        }
        await abortable(options.signal, sleep(Math.min(left, RECONNECT_PAUSE_MS)));
        tried = others();
        continue;
      }
      tried.add(endpoint);
      if (!pool.isReady(endpoint)) {
        const connection = await abortable(options.signal, pool.connect(endpoint, new Date(Date.now() + dialTimeoutMs)));
        // "failed" goes on to the call, which then fails at once with the transport's own reason.
        if (connection === "timeout") {
          lastError = new ClientError(call.method.path, Status.UNAVAILABLE, `No connection established: ${endpoint} did not answer`);
          continue;
        }
      }
      try {
        const result = dispatch(endpoint, call.method.path, call.request, options);
        if (result === undefined) continue; // dropped from the list meanwhile: never sent, try the next
        if (result instanceof Promise) {
          const response = await result;
          pool.markHealthy(endpoint);
          return response;
        }
        return yield* result;
      } catch (err) {
        lastError = failedAt(endpoint, err, call.requestStream);
      }
    }
  }

  return ((call, options: CallOptions & EndpointOption) => {
    // The usual unary call, to the pinned endpoint while it is connected: one attempt without a
    // generator of its own, which starts only if the attempt fails.
    if (options.endpoint === undefined && !call.requestStream && !call.responseStream) {
      const endpoint = pool.pick(NONE_TRIED);
      if (endpoint !== undefined && pool.isReady(endpoint)) {
        let result: ReturnType<Dispatch>;
        try {
          result = dispatch(endpoint, call.method.path, call.request, options);
        } catch (failure) {
          return attempts(call, options, { endpoint, failure });
        }
        if (result instanceof Promise) {
          const answered = answer(result, call.method.path, () => pool.markHealthy(endpoint));
          return untilFailure(answered, (failure) => attempts(call, options, { endpoint, failure }));
        }
      }
    }
    return attempts(call, options);
  }) as ClientMiddleware;
}
