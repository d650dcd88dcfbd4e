import type { CallOptions } from "nice-grpc-common";
import type { CallContext, Diagnostics, TracingChannelLike } from "../core/diagnostics.js";
import type { SendAttempt, WireMethod } from "../wire/wire.js";

/**
 * `send` with every attempt traced on the "etcd-sdk:call" TracingChannel while anything subscribes
 * to it (only then: a call pays for tracing only when someone listens). A unary attempt is one
 * traced promise; a stream starts when it is opened and ends when its last response was read or it
 * failed.
 */
export function traced(send: SendAttempt, diagnostics: Diagnostics): SendAttempt {
  const calls = diagnostics.calls;
  if (!calls) return send;
  return (endpoint: string, method: WireMethod, request: unknown, options: CallOptions) => {
    if (!calls.hasSubscribers) return send(endpoint, method, request, options);
    const context: CallContext = { method: method.path, endpoint };
    if (method.requestStream || method.responseStream) return tracedStream(calls, context, () => send(endpoint, method, request, options));
    let result: ReturnType<SendAttempt>;
    // tracePromise runs the function at once, so `result` is known when it returns.
    const tracing = calls.tracePromise(() => {
      result = send(endpoint, method, request, options);
      return result instanceof Promise ? result : Promise.resolve(undefined);
    }, context);
    return result instanceof Promise ? tracing : result;
  };
}

function tracedStream(calls: TracingChannelLike, context: CallContext, open: () => ReturnType<SendAttempt>): ReturnType<SendAttempt> {
  const failed = (err: unknown): never => {
    context.error = err;
    calls.error.publish(context);
    throw err;
  };
  calls.start.publish(context);
  let stream: ReturnType<SendAttempt>;
  try {
    stream = open();
  } catch (err) {
    failed(err);
  } finally {
    calls.end.publish(context);
  }
  if (stream === undefined || stream instanceof Promise) return stream;
  const responses = stream;
  return (async function* () {
    try {
      yield* responses;
    } catch (err) {
      failed(err);
    } finally {
      calls.asyncStart.publish(context);
      calls.asyncEnd.publish(context);
    }
  })();
}
