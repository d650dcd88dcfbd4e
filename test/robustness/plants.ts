import { type ClientMiddleware, Metadata } from "nice-grpc-common";

/**
 * Bugs the robustness checks must catch, planted below the SDK as inner middleware (the layer
 * closest to the wire), so a run can show that the checks fail when the client misbehaves:
 * - "resend-write": one put in ten is sent a second time after etcd answered it, as a client
 *   that retries a write it had already sent would;
 * - "watch-late": a watcher the client creates again on a new stream resumes one revision after
 *   the one it should, skipping an event;
 * - "keepalive-no-hasleader": keep-alive streams go without etcd's `hasleader` metadata, so a
 *   member that lost its leader keeps them open without renewing anything.
 */
export const PLANTS = ["resend-write", "watch-late", "keepalive-no-hasleader"] as const;
export type Plant = (typeof PLANTS)[number];

const PUT = "/etcdserverpb.KV/Put";
const WATCH = "/etcdserverpb.Watch/Watch";
const KEEP_ALIVE = "/etcdserverpb.Lease/LeaseKeepAlive";

interface CreateRequest {
  requestUnion?: { $case: string; createRequest?: { watchId?: bigint | number; startRevision?: bigint } };
}

const resendWrite: ClientMiddleware = async function* (call, options) {
  if (call.method.path !== PUT) return yield* call.next(call.request, options);
  const first = yield* call.next(call.request, options);
  if (Math.random() >= 0.1) return first;
  return yield* call.next(call.request, options);
} as ClientMiddleware;

function watchLate(): ClientMiddleware {
  /** Watch ids the client created once: a create for one of them again is a resume. */
  const created = new Set<string>();
  return async function* (call, options) {
    if (call.method.path !== WATCH || !call.requestStream) return yield* call.next(call.request, options);
    const requests = (async function* () {
      for await (const request of call.request as AsyncIterable<CreateRequest>) {
        const create = request.requestUnion?.$case === "createRequest" ? request.requestUnion.createRequest : undefined;
        if (create && create.startRevision) {
          const id = String(create.watchId);
          if (created.has(id)) {
            yield { ...request, requestUnion: { ...request.requestUnion!, createRequest: { ...create, startRevision: create.startRevision + 1n } } };
            continue;
          }
          created.add(id);
        }
        yield request;
      }
    })();
    return yield* call.next(requests as never, options);
  } as ClientMiddleware;
}

const keepAliveWithoutHasLeader: ClientMiddleware = async function* (call, options) {
  if (call.method.path !== KEEP_ALIVE || !options.metadata?.get("hasleader")) return yield* call.next(call.request, options);
  const metadata = Metadata(options.metadata);
  metadata.delete("hasleader");
  return yield* call.next(call.request, { ...options, metadata });
} as ClientMiddleware;

/** The inner middleware that plants `plant` in a client. */
export function plantMiddleware(plant: Plant): ClientMiddleware {
  switch (plant) {
    case "resend-write":
      return resendWrite;
    case "watch-late":
      return watchLate();
    case "keepalive-no-hasleader":
      return keepAliveWithoutHasLeader;
  }
}
