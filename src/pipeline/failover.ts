import { type CallOptions, ClientError, type ClientMiddleware, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import type { EndpointSet } from "../wire/endpoints.js";
import { EndpointError, TlsError } from "../core/errors.js";
import { abortable } from "../core/abortable.js";
import { answer, untilFailure } from "../core/attempt.js";
import { deliveryOf, failedInTls, sizeLimitOf, WireFailure } from "../core/wire-failure.js";
import { isWireMethod, type SendAttempt, type WireMethod } from "../wire/wire.js";
import { EndpointStalled } from "../core/stalled.js";
import { KVDefinition, RangeRequest } from "../../gen/etcdserverpb/rpc.js";
import { wireMethods } from "./chain.js";
import { ErrEmptyKey } from "../core/errors.js";

/** Per-call options of the failover middleware. */
export interface EndpointOption {
  /** Send the call to this endpoint (host:port) only. */
  endpoint?: string;
  /**
   * Set by the pipeline's deadline level on calls with a deadline: whether the caller cancelled
   * the call. Their signal aborts on the caller's or when the deadline passes.
   */
  callerCancelled?: () => boolean;
}

export interface FailoverOptions {
  pool: EndpointSet;
  /** How long an attempt waits for its endpoint to connect before moving on, in ms. */
  dialTimeoutMs: number;
  /** The wire's send. */
  send: SendAttempt;
}

const answeredBy = new WeakMap<object, string>();

/** The endpoint (host:port) that an error came from, when one was reached. */
export function endpointOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null ? answeredBy.get(err) : undefined;
}

/**
 * Whether a failed attempt may go to another endpoint: only when its wire knows that no server
 * read any of it. A request over the send limit would be over it anywhere, and a request stream may
 * have been read in part already: its owner (watch, keep-alive) starts it anew instead.
 */
export function mayTryElsewhere(err: unknown, requestStream: boolean): boolean {
  if (requestStream || sizeLimitOf(err) !== undefined) return false;
  const delivery = deliveryOf(err);
  return delivery === "never-sent" || delivery === "refused-unread";
}

/** Failures that say this member cannot serve now: no connection, no leader, stopped, overloaded. */
function memberCannotServe(err: unknown): boolean {
  return err instanceof ClientError && err.code === Status.UNAVAILABLE;
}

/**
 * Whether the call was given up on while its endpoint was silent: its owner found the endpoint
 * stalled, or its deadline passed. (Not the caller's own signal: a campaign cancelled after an
 * hour says nothing about its member.)
 */
function gaveUpWaiting(options: CallOptions & EndpointOption): boolean {
  const { signal, callerCancelled } = options;
  if (!signal?.aborted) return false;
  const deadlinePassed = callerCancelled !== undefined && !callerCancelled();
  return signal.reason instanceof EndpointStalled || deadlinePassed;
}

/** What an endpoint is asked to learn whether it answers: a Range without a key, which etcd refuses before it reads anything. */
export const PROBE = wireMethods(KVDefinition).range!;

/** Whether a failure of PROBE is etcd's own answer to it. */
export function isProbeAnswer(err: unknown): boolean {
  return err instanceof ClientError && err.details === ErrEmptyKey.serverMessage;
}

/**
 * What a suspected endpoint is asked: a linearizable count of one key. Only a member that reaches
 * its leader answers it (a frozen one, or one cut off from its peers, does not); with auth on,
 * etcd checks permissions after the read, so a refusal is an answer too.
 */
const LIVENESS_PROBE = RangeRequest.fromPartial({ key: new Uint8Array([0]), countOnly: true });

/** Whether a failure of LIVENESS_PROBE is still an answer from a member that serves. */
function servedAnswer(err: unknown): boolean {
  return deliveryOf(err) === "answered" && !memberCannotServe(err);
}

/** How long a suspected endpoint has to answer LIVENESS_PROBE before it is set aside. */
const PROBE_TIMEOUT_MS = 1_000;

/** How long to wait before trying endpoints again once every one failed to connect. */
export const RECONNECT_PAUSE_MS = 100;

/** The method of a call with its codecs, as the pipeline's chain made it. */
function wireMethod(call: ClientMiddlewareCall<unknown, unknown>): WireMethod {
  if (!isWireMethod(call.method)) throw new Error(`a middleware replaced the method of ${call.method.path} with one the wire cannot send`);
  return call.method;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** No endpoint tried yet, for the usual call. */
const NONE_TRIED: ReadonlySet<string> = new Set();

/**
 * The innermost middleware: chooses the endpoint for each attempt of a call and sends it there
 * instead of calling `next`. An attempt that could not even connect is moved to the next endpoint
 * at once, whatever the call, because it provably never reached a server; any other failure is
 * returned to the retry middleware above, which repeats only calls that change nothing. Members
 * that fail with Unavailable (no connection, no leader, stopped) are passed over for a while.
 */
export function failoverMiddleware({ pool, dialTimeoutMs, send }: FailoverOptions): ClientMiddleware {
  /** Whether `endpoint` answers LIVENESS_PROBE in time. */
  async function answers(endpoint: string): Promise<boolean> {
    try {
      const sent = send(endpoint, PROBE, LIVENESS_PROBE, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      if (sent === undefined) return false;
      await sent;
      return true;
    } catch (err) {
      return servedAnswer(err);
    }
  }

  /** Records an attempt's failure at `endpoint`; throws it on unless the call may go to another endpoint. */
  function failedAt(endpoint: string, err: unknown, call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions & EndpointOption): ClientError {
    if (typeof err === "object" && err !== null) answeredBy.set(err, endpoint);
    if (memberCannotServe(err)) pool.markFailed(endpoint, err);
    else if (gaveUpWaiting(options)) pool.suspect(endpoint, () => answers(endpoint));
    const { requestStream } = call;
    if (!mayTryElsewhere(err, requestStream)) throw err;
    return err as ClientError;
  }

  /** Every attempt of a call, or those after a first one that failed at `first.endpoint`. */
  async function* attempts(call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions & EndpointOption, first?: { endpoint: string; failure: unknown }) {
    // A call for one member (its status, defragmenting it) goes there or fails; no failover.
    const only = options.endpoint;
    const others = () => new Set<string>(only === undefined ? [] : pool.endpoints.filter((e) => e !== only));
    let tried = others();
    if (only !== undefined && !pool.endpoints.includes(only)) {
      throw new EndpointError(`${only} is not one of the client's endpoints (${pool.endpoints.join(", ")})`, Status.INVALID_ARGUMENT, only, { outcome: "not-applied" });
    }
    const method = wireMethod(call);
    const started = Date.now();
    let lastError: ClientError | undefined;
    /** Endpoints whose last attempt failed in TLS: when that is all of them, waiting mends nothing. */
    const failedTls = new Set<string>();
    const failed = (endpoint: string, err: ClientError) => {
      lastError = err;
      if (failedInTls(err)) failedTls.add(endpoint);
      else failedTls.delete(endpoint);
    };
    if (first) {
      tried.add(first.endpoint);
      failed(first.endpoint, failedAt(first.endpoint, first.failure, call, options));
    }
    for (;;) {
      const endpoint = pool.pick(tried, only === undefined);
      if (endpoint === undefined) {
        // Every endpoint was tried and none could be reached. Keep trying until the dial timeout,
        // then fail for good: an EndpointError is no ClientError, so the retry middleware lets it pass.
        const left = dialTimeoutMs - (Date.now() - started);
        const candidates = only === undefined ? pool.endpoints : [only];
        if (left <= 0 || candidates.every((e) => failedTls.has(e))) {
          const where = only ?? [...tried].join(", ");
          const lastTried = only ?? [...tried].pop();
          const detail = { cause: lastError, noneReachable: true };
          if (failedInTls(lastError)) throw new TlsError(`TLS connection to etcd at ${where} failed: ${lastError.details}`, Status.UNAVAILABLE, lastTried, detail);
          const reason = lastError?.details ?? "no endpoint configured";
          throw new EndpointError(`no etcd server reachable at ${where} within ${dialTimeoutMs} ms: ${reason}`, Status.UNAVAILABLE, lastTried, detail);
        }
        await abortable(options.signal, sleep(Math.min(left, RECONNECT_PAUSE_MS)));
        tried = others();
        continue;
      }
      // The call's dial timeout is shared among the endpoints still to try, so that a frozen one
      // (it accepts the connection but never answers) leaves time for the others.
      const untried = pool.endpoints.filter((e) => !tried.has(e)).length;
      const left = Math.max(0, dialTimeoutMs - (Date.now() - started));
      tried.add(endpoint);
      if (!pool.isReady(endpoint)) {
        const connection = await abortable(options.signal, pool.connect(endpoint, new Date(Date.now() + left / Math.max(1, untried))));
        if (connection === "timeout") {
          // One cut short by the call's own deadline says less than a failure seen before it.
          if (lastError === undefined) lastError = new WireFailure(call.method.path, Status.UNAVAILABLE, `${endpoint} did not answer`, "never-sent");
          failedTls.delete(endpoint);
          continue;
        }
        // "failed" goes on to a call, which then fails at once with the wire's own reason; not a
        // request stream, whose requests the attempt would take with it: that goes to the next endpoint.
        if (connection === "failed" && call.requestStream) {
          const failure = await pool.connectFailure(endpoint);
          failed(endpoint, new WireFailure(call.method.path, Status.UNAVAILABLE, `could not connect to ${endpoint}: ${failure?.message ?? "refused"}`, "never-sent", { tls: failure?.tls ?? false }));
          continue;
        }
      }
      try {
        const result = send(endpoint, method, call.request, options);
        if (result === undefined) continue; // dropped from the list meanwhile: never sent, try the next
        if (result instanceof Promise) {
          const response = await result;
          pool.markHealthy(endpoint);
          return response;
        }
        return yield* result;
      } catch (err) {
        failed(endpoint, failedAt(endpoint, err, call, options));
      }
    }
  }

  return ((call, options: CallOptions & EndpointOption) => {
    // The usual unary call, to the pinned endpoint while it is connected: one attempt without a
    // generator of its own, which starts only if the attempt fails.
    if (options.endpoint === undefined && !call.requestStream && !call.responseStream) {
      const endpoint = pool.pick(NONE_TRIED);
      if (endpoint !== undefined && pool.isReady(endpoint)) {
        let result: ReturnType<SendAttempt>;
        try {
          result = send(endpoint, wireMethod(call), call.request, options);
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
