import type { ClientMiddleware } from "nice-grpc-common";
import type { CheckResult } from "./watch-checks.js";

/** A keep-alive etcd answered with a positive TTL: the lease lived when it got there. */
export interface ConfirmedRenewal {
  /** When the wire took the request (ms since the round began): the lease lives at least until this + TTL. */
  sentAt: number;
  answeredAt: number;
}

/** What a round saw of the one lease its client kept alive. */
export interface LeaseRecord {
  ttlMs: number;
  renewals: ConfirmedRenewal[];
  /** When each LeaseKeepAlive stream was opened. */
  streams: number[];
  /** When each stream that failed (not one the SDK ended) failed, and with what. */
  streamFailures: { at: number; error: string }[];
  /** When the SDK reported the lease lost, and why. */
  lost?: { at: number; reason: string };
  /** The lease's remaining TTL in seconds as another client saw it on the healthy members (-1: gone), asked at `at`. */
  serverSamples: { at: number; answeredAt: number; ttl: number }[];
  /** When the observation ended. */
  endedAt: number;
  /** When the fault began and ended, for the evidence. */
  fault: { start: number; end: number };
}

const KEEP_ALIVE = "/etcdserverpb.Lease/LeaseKeepAlive";

/**
 * An inner middleware that records, below the SDK's keep-alive logic and above the wire, when
 * each keep-alive request went out and which were confirmed: evidence that does not rely on what
 * the SDK believes.
 */
export function keepAliveRecorder(record: LeaseRecord, clock: () => number): ClientMiddleware {
  return async function* (call, options) {
    if (call.method.path !== KEEP_ALIVE || !call.requestStream) return yield* call.next(call.request, options);
    record.streams.push(clock());
    const sent: number[] = [];
    const requests = (async function* () {
      for await (const request of call.request as AsyncIterable<unknown>) {
        sent.push(clock());
        yield request;
      }
    })();
    try {
      for await (const response of call.next(requests as never, options) as AsyncIterable<{ TTL: bigint }>) {
        const sentAt = sent.shift();
        if (sentAt !== undefined && response.TTL > 0n) record.renewals.push({ sentAt, answeredAt: clock() });
        yield response as never;
      }
    } catch (err) {
      if (!options.signal?.aborted) record.streamFailures.push({ at: clock(), error: String(err) });
      throw err;
    }
    return undefined as never;
  } as ClientMiddleware;
}

/** Slack for timers on a busy machine, in ms. */
const SLACK_MS = 750;

/**
 * How long before the lease's deadline the cluster must serve again for the client to be held to
 * renewing in time: it may wait 500 ms before opening a keep-alive stream again, plus slack.
 */
const RENEW_WINDOW_MS = 500 + SLACK_MS;

/** The last renewal confirmed by `at`. */
function lastConfirmedBy(record: LeaseRecord, at: number): ConfirmedRenewal | undefined {
  let last: ConfirmedRenewal | undefined;
  for (const r of record.renewals) if (r.answeredAt <= at && (!last || r.sentAt > last.sentAt)) last = r;
  return last;
}

const ms = (t: number) => `${t.toFixed(0)} ms`;

function faultWindow(record: LeaseRecord): string {
  return `fault ${ms(record.fault.start)}-${ms(record.fault.end)}`;
}

/**
 * Timely: the client reports the lease lost no later than TTL after the last renewal etcd
 * confirmed (the latest the lease is known to live); it never goes on holding a lease without a
 * confirmation for longer, nor one the cluster says is gone.
 */
export function checkLeaseTimely(record: LeaseRecord): CheckResult {
  const end = record.lost?.at ?? record.endedAt;
  const held = (at: number) => (record.lost ? `reported lost only at ${ms(record.lost.at)}` : `still held at ${ms(at)}`);
  /** Until when the confirmations so far vouch for the lease, and the one that vouches. */
  let vouched: ConfirmedRenewal | undefined;
  for (const renewal of [...record.renewals].sort((a, b) => a.answeredAt - b.answeredAt)) {
    if (renewal.answeredAt > end) break;
    if (vouched && renewal.answeredAt > vouched.sentAt + record.ttlMs + SLACK_MS) {
      const expiry = vouched.sentAt + record.ttlMs;
      return { status: "fail", detail: `no renewal confirmed from ${ms(vouched.answeredAt)} until ${ms(renewal.answeredAt)}, past the deadline ${ms(expiry)}, and the lease was not reported lost (${faultWindow(record)})` };
    }
    if (!vouched || renewal.sentAt > vouched.sentAt) vouched = renewal;
  }
  if (vouched && end > vouched.sentAt + record.ttlMs + SLACK_MS) {
    return { status: "fail", detail: `last confirmed renewal sent at ${ms(vouched.sentAt)}, so the lease was due to count as lost at ${ms(vouched.sentAt + record.ttlMs)}; ${held(end)} (${faultWindow(record)})` };
  }
  const gone = record.serverSamples.find((s) => s.ttl < 0);
  if (gone && (!record.lost || record.lost.at > gone.at + SLACK_MS)) {
    return { status: "fail", detail: `the cluster had no such lease at ${ms(gone.at)}; the client ${record.lost ? `reported it lost only at ${ms(record.lost.at)}` : "never reported it lost"}` };
  }
  return { status: "pass", detail: record.lost ? `lost at ${ms(record.lost.at)} (${record.lost.reason}), in time` : `${record.renewals.length} renewals confirmed` };
}

/**
 * Kept: the faults of a round leave a quorum the client can reach, so a lease kept alive with the
 * SDK's defaults must live through them: never reported lost, never expired in the cluster; and
 * never reported lost before its deadline (TTL after the last confirmed renewal). A loss is not
 * judged when the cluster itself answered no lease request (it had no leader) from the fault's
 * start until too close to the deadline for any client to renew: on a busy machine an election
 * can outlast most of a 5 s TTL.
 */
export function checkLeaseKept(record: LeaseRecord): CheckResult {
  const renewalsDuring = record.renewals.filter((r) => r.answeredAt >= record.fault.start && r.answeredAt <= record.fault.end).length;
  if (record.lost) {
    const last = lastConfirmedBy(record, record.lost.at);
    const deadline = last ? last.sentAt + record.ttlMs : undefined;
    const servedAgain = record.serverSamples.find((s) => s.at >= record.fault.start && s.ttl > 0)?.answeredAt;
    if (deadline !== undefined && servedAgain !== undefined && servedAgain > deadline - RENEW_WINDOW_MS) {
      return {
        status: "n/a",
        detail: `reported lost (${record.lost.reason}) at ${ms(record.lost.at)}, but the cluster answered no lease request from the fault's start (${ms(record.fault.start)}) until ${ms(servedAgain)}, too close to the deadline ${ms(deadline)} to renew`,
      };
    }
    const early = deadline !== undefined && record.lost.at < deadline - SLACK_MS ? ` (before its deadline ${ms(deadline)})` : "";
    const streams = record.streams.map(ms).join(", ");
    return {
      status: "fail",
      detail:
        `reported lost (${record.lost.reason}) at ${ms(record.lost.at)}${early}, ${faultWindow(record)}; ` +
        `last confirmed renewal sent at ${last ? ms(last.sentAt) : "never"}, answered at ${last ? ms(last.answeredAt) : "-"}; ` +
        `${renewalsDuring} renewals confirmed during the fault; keep-alive streams opened at ${streams || "-"}` +
        record.streamFailures.map((f) => `; a stream failed at ${ms(f.at)}: ${f.error}`).join(""),
    };
  }
  const gone = record.serverSamples.find((s) => s.ttl < 0);
  if (gone) return { status: "fail", detail: `the lease expired in the cluster (seen at ${ms(gone.at)}), ${faultWindow(record)}` };
  return { status: "pass", detail: `${renewalsDuring} renewals confirmed during the fault` };
}
