/**
 * What the client tells about itself as it works: for tools that subscribe to Node's
 * diagnostics_channel (APMs, tracers, a test), and for a logger given in the config. The web entry
 * has no diagnostics_channel and imports nothing of Node: there only the logger hears.
 */

/** The channels the client publishes on, by name. */
export const CHANNELS = {
  /** A TracingChannel ("tracing:etcd-sdk:call:start", ...) around every attempt of an RPC; context: CallContext. */
  call: "etcd-sdk:call",
  /** An endpoint was set aside after a failure: EndpointEvent with `error`. */
  endpointFailed: "etcd-sdk:endpoint:failed",
  /** A set-aside endpoint answered again: EndpointEvent. */
  endpointRecovered: "etcd-sdk:endpoint:recovered",
  /** The watch stream broke: WatchStreamEvent with `error`; it is opened again unless the error says otherwise. */
  watchBroken: "etcd-sdk:watch:broken",
  /** The watch stream was opened again and its watchers created anew: WatchStreamEvent with `resumeRevisions`. */
  watchResumed: "etcd-sdk:watch:resumed",
  /** A lease's renewal was answered after the next one was due: LeaseEvent with `lateMs`. */
  keepAliveLate: "etcd-sdk:keepalive:late",
  /** A kept lease was lost: LeaseEvent with `reason` ("deadline", "gone"). */
  leaseLost: "etcd-sdk:keepalive:lost",
  /** A new auth token was obtained with the configured credentials: an empty TokenEvent. */
  tokenRefreshed: "etcd-sdk:auth:token-refreshed",
  /** Refreshing the endpoints from the member list (autoSyncIntervalMs) failed: AutoSyncEvent. */
  autoSyncFailed: "etcd-sdk:autosync:failed",
} as const;

/** The context of a traced RPC attempt. */
export interface CallContext {
  /** The gRPC path, "/etcdserverpb.KV/Range". */
  method: string;
  /** host:port the attempt went to. */
  endpoint: string;
  /** Set by the tracing channel: the response of a unary call, or the error of any call. */
  result?: unknown;
  /** Set by the tracing channel when the attempt failed: what it failed with. */
  error?: unknown;
}

/** What `endpointFailed` and `endpointRecovered` report. */
export interface EndpointEvent {
  /** The endpoint, host:port. */
  endpoint: string;
  /** Why it was set aside (`endpointFailed` only). */
  error?: unknown;
}

/** What `watchBroken` and `watchResumed` report about the stream a client's watchers share. */
export interface WatchStreamEvent {
  /** What broke the stream (`watchBroken` only). */
  error?: unknown;
  /** Each watcher's revision it resumes from, by watch ID. */
  resumeRevisions?: Map<number, bigint>;
}

/** What `keepAliveLate` and `leaseLost` report about a lease the client keeps alive. */
export interface LeaseEvent {
  /** The lease's ID. */
  leaseId: bigint;
  /** How long after the next renewal was due the answer came, in ms (`keepAliveLate` only). */
  lateMs?: number;
  /** How the lease was lost, as {@link LeaseLostError.reason}: "deadline" or "gone" (`leaseLost` only). */
  reason?: string;
}

/** What `autoSyncFailed` reports; the endpoint list stays as it was until the next try. */
export interface AutoSyncEvent {
  /** Why the member list could not be read. */
  error: unknown;
}

/**
 * A logger for the client's events; any method left out is not called. `console` is one. Each
 * method gets a short message and the event ({@link EndpointEvent}, {@link LeaseEvent}, ...).
 */
export interface Logger {
  /** Routine events: a token refreshed. */
  debug?(message: string, details: object): void;
  /** Recoveries: an endpoint answering again, a watch stream resumed. */
  info?(message: string, details: object): void;
  /** Trouble the client works around: an endpoint set aside, a watch stream broken, a renewal answered late, an auto-sync failed. */
  warn?(message: string, details: object): void;
  /** A kept lease lost. */
  error?(message: string, details: object): void;
}

/** The parts of node:diagnostics_channel the client uses, passed in by the Node entries. */
export interface DiagnosticsChannelModule {
  channel(name: string): { readonly hasSubscribers: boolean; publish(message: unknown): void };
  tracingChannel(name: string): TracingChannelLike;
}

export interface TracingChannelLike {
  readonly hasSubscribers: boolean;
  tracePromise<T>(fn: () => Promise<T>, context: object): Promise<T>;
  start: { publish(message: unknown): void };
  end: { publish(message: unknown): void };
  asyncStart: { publish(message: unknown): void };
  asyncEnd: { publish(message: unknown): void };
  error: { publish(message: unknown): void };
}

type EventName = Exclude<keyof typeof CHANNELS, "call">;

const LEVEL: Record<EventName, keyof Logger> = {
  endpointFailed: "warn",
  endpointRecovered: "info",
  watchBroken: "warn",
  watchResumed: "info",
  keepAliveLate: "warn",
  leaseLost: "error",
  tokenRefreshed: "debug",
  autoSyncFailed: "warn",
};

const MESSAGE: Record<EventName, string> = {
  endpointFailed: "etcd endpoint set aside after a failure",
  endpointRecovered: "etcd endpoint answers again",
  watchBroken: "watch stream broke",
  watchResumed: "watch stream resumed",
  keepAliveLate: "lease renewal answered late",
  leaseLost: "lease lost",
  tokenRefreshed: "auth token refreshed",
  autoSyncFailed: "endpoint auto-sync failed",
};

/** Publishes one client's events: on diagnostics_channel where the entry has it, and to its logger. */
export class Diagnostics {
  private readonly channels: Partial<Record<EventName, { readonly hasSubscribers: boolean; publish(message: unknown): void }>> = {};
  /** Around every RPC attempt, when a diagnostics_channel module was given. */
  readonly calls: TracingChannelLike | undefined;

  constructor(
    dc: DiagnosticsChannelModule | undefined,
    private readonly logger: Logger | undefined,
  ) {
    this.calls = dc?.tracingChannel(CHANNELS.call);
    if (dc) for (const name of Object.keys(LEVEL) as EventName[]) this.channels[name] = dc.channel(CHANNELS[name]);
  }

  publish(name: "endpointFailed" | "endpointRecovered", event: EndpointEvent): void;
  publish(name: "watchBroken" | "watchResumed", event: WatchStreamEvent): void;
  publish(name: "keepAliveLate" | "leaseLost", event: LeaseEvent): void;
  publish(name: "tokenRefreshed", event: object): void;
  publish(name: "autoSyncFailed", event: AutoSyncEvent): void;
  publish(name: EventName, event: object): void {
    const channel = this.channels[name];
    if (channel?.hasSubscribers) channel.publish(event);
    const log = this.logger?.[LEVEL[name]];
    if (log) {
      try {
        log.call(this.logger, MESSAGE[name], event);
      } catch {
        // A logger's own failure must not break the call, stream or timer that logs.
      }
    }
  }
}

/** Diagnostics that tell nothing: for parts made without a client (tests, tools). */
export const NO_DIAGNOSTICS = new Diagnostics(undefined, undefined);
