import { type CallOptions, ClientError, type ClientMiddleware, type ClientMiddlewareCall, Metadata } from "nice-grpc-common";
import { abortable } from "../src/core/abortable.js";

/**
 * The auth token of one client, shared by all its calls: one etcd issued for the configured
 * credentials (Authenticate runs without any caller's signal, so one caller giving up does not fail
 * the refresh the others wait for), or one the application gave.
 */
export class TokenSource {
  // A private field: util.inspect would print a promise's token.
  #token: Promise<string> | undefined;

  /**
   * @param authenticate exchanges the configured credentials for a fresh token (the Authenticate
   * RPC); absent when the client has none, so a token etcd no longer accepts cannot be renewed.
   * @param token a token to start with (clientv3's Config.Token).
   */
  constructor(
    private readonly authenticate: (() => Promise<string>) | undefined,
    token?: string,
    /** Told each time credentials gave a new token. */
    private readonly refreshed?: () => void,
  ) {
    if (token !== undefined) this.#token = Promise.resolve(token);
  }

  /** Whether calls carry a token: one was given, or credentials can get one. */
  get active(): boolean {
    return this.#token !== undefined || this.authenticate !== undefined;
  }

  /** Whether a token etcd refused can be replaced by a fresh one. */
  get renewable(): boolean {
    return this.authenticate !== undefined;
  }

  /** The current token, authenticating first when there is none. */
  current(): Promise<string> {
    return this.#token ?? this.refresh(undefined);
  }

  /** Replaces the token calls send from now on. */
  replace(token: string): void {
    this.#token = Promise.resolve(token);
  }

  /** A new token, unless another call already replaced the `stale` one: then that one. */
  refresh(stale: Promise<string> | undefined): Promise<string> {
    const { authenticate } = this;
    if (authenticate && (this.#token === undefined || this.#token === stale)) {
      const fresh = authenticate();
      this.#token = fresh;
      fresh.then(
        () => this.refreshed?.(),
        () => {
          if (this.#token === fresh) this.#token = undefined;
        },
      );
    }
    return this.#token ?? Promise.reject(new Error("no auth token and no credentials to get one"));
  }
}

export interface AuthOptions {
  tokens: TokenSource;
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
export function authMiddleware({ tokens }: AuthOptions): ClientMiddleware {
  const withToken = (options: CallOptions, value: string): CallOptions => ({
    ...options,
    metadata: Metadata(options.metadata).set("token", value),
  });

  async function* authenticated(call: ClientMiddlewareCall<unknown, unknown>, options: CallOptions) {
    const used = tokens.current();
    let delivered = false;
    try {
      const attempt = call.next(call.request, withToken(options, await abortable(options.signal, used))) as AsyncGenerator<unknown, unknown, undefined>;
      return yield* observed(attempt, () => (delivered = true));
    } catch (err) {
      if (!isStaleToken(err) || delivered || call.requestStream || !tokens.renewable) throw err;
      const fresh = await abortable(options.signal, tokens.refresh(used));
      return yield* call.next(call.request, withToken(options, fresh));
    }
  }

  return authenticated as ClientMiddleware;
}
