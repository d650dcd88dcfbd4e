import { type CallOptions, ClientError, type ClientMiddleware, Metadata } from "nice-grpc-common";

export interface AuthOptions {
  /** Exchanges the configured credentials for a fresh token (the Authenticate RPC). */
  authenticate: (signal: AbortSignal | undefined) => Promise<string>;
}

/** etcd's messages for a token it no longer accepts: expired, or older than the auth store. */
const STALE_TOKEN = new Set(["etcdserver: invalid auth token", "etcdserver: revision of auth store is old"]);

function isStaleToken(err: unknown): boolean {
  return err instanceof ClientError && STALE_TOKEN.has(err.details);
}

/** Passes a stream through, telling `onYield` when a message went out; closes the source early if the consumer stops. */
async function* observed<T, R>(source: AsyncGenerator<T, R, undefined>, onYield: () => void): AsyncGenerator<T, R, undefined> {
  try {
    for (;;) {
      const step = await source.next();
      if (step.done) return step.value;
      onYield();
      yield step.value;
    }
  } finally {
    await source.return(undefined as R);
  }
}

/**
 * Sends the auth token as "token" metadata on every call and stream, authenticating on first use.
 * When etcd rejects a token as expired or stale, the call gets a new token and is tried once more;
 * concurrent calls that hit this share one Authenticate. Streams are tried again only if they
 * failed before delivering anything, and calls that stream requests are not (their requests are
 * gone).
 */
export function authMiddleware({ authenticate }: AuthOptions): ClientMiddleware {
  let token: Promise<string> | undefined;
  const refresh = (signal: AbortSignal | undefined, stale?: Promise<string>): Promise<string> => {
    // A call that saw an older token than the current one reuses the refresh already made.
    if (token === undefined || token === stale) {
      const fresh = authenticate(signal);
      token = fresh;
      fresh.catch(() => {
        if (token === fresh) token = undefined;
      });
    }
    return token;
  };
  const withToken = (options: CallOptions, value: string): CallOptions => ({
    ...options,
    metadata: Metadata(options.metadata).set("token", value),
  });

  return async function* auth(call, options) {
    const used = token ?? refresh(options.signal);
    let delivered = false;
    try {
      const attempt = call.next(call.request, withToken(options, await used)) as AsyncGenerator<unknown, unknown, undefined>;
      return yield* observed(attempt, () => (delivered = true));
    } catch (err) {
      if (!isStaleToken(err) || delivered || call.requestStream) throw err;
      const fresh = await refresh(options.signal, used);
      return yield* call.next(call.request, withToken(options, fresh));
    }
  } as ClientMiddleware;
}
