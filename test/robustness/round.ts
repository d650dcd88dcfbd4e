import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, type ClientConfig } from "../../src/index.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { injectFault, type FaultName } from "./faults.js";
import { HistoryRecorder } from "./history.js";
import { checkAvailable, checkSerializable, checkWritesOnce } from "./history-checks.js";
import { checkLeaseKept, checkLeaseTimely, keepAliveRecorder, type LeaseRecord } from "./lease-checks.js";
import { checkLinearizable } from "./linearizability.js";
import { type Plant, plantMiddleware } from "./plants.js";
import { readHistory, readStore } from "./etcd-truth.js";
import {
  type CheckResult,
  checkAtomic,
  checkOrdered,
  checkProgress,
  checkReliable,
  checkResumable,
  checkTruthMatchesStore,
  checkUnique,
  type WatchRecord,
  WatchRecorder,
} from "./watch-checks.js";
import { Workload } from "./workload.js";

/** What a round checks, in the order of the reports. */
export const CHECKS = [
  "linearizable",
  "serializable",
  "writes-once",
  "watch-ordered",
  "watch-unique",
  "watch-atomic",
  "watch-reliable",
  "watch-resumable",
  "watch-progress",
  "lease-timely",
  "lease-kept",
  "available",
] as const;
export type CheckName = (typeof CHECKS)[number];

/** What each check holds the round to, for the reports. */
export const CHECK_DESCRIPTIONS: Record<CheckName, string> = {
  linearizable:
    "porcupine, with an etcd KV model that tracks the revision, finds the history linearizable: no write lost or applied twice, no stale linearizable read. A failed write whose outcome is unknown may or may not have happened; one the SDK says was never sent, and failed reads, are left out",
  serializable: "each serializable read shows the store as etcd's history had it at the revision it reports (stale is allowed)",
  "writes-once": "each value is written once, at the revision its put reported; etcd's history replays to the final store",
  "watch-ordered": "a watcher's events come in revision order",
  "watch-unique": "no event is delivered twice",
  "watch-atomic": "a revision's events come in one response, never split",
  "watch-reliable": "no event is missed between a watcher's start and the end of the round",
  "watch-resumable": "a watcher resumed after a broken stream, or started at an old revision, goes on at the right event",
  "watch-progress": "no progress notification runs ahead of an event still to come",
  "lease-timely": "the kept lease is reported lost no later than its TTL after the last renewal etcd confirmed, and never held once the cluster no longer has it",
  "lease-kept": "with a quorum reachable, the kept lease (TTL 5 s) is never reported lost (not judged when the cluster had no leader until too close to the lease's deadline for any client to renew)",
  available: "each client's reads never stall more than 5 s while one member is faulted",
};

export type Transport = NonNullable<ClientConfig["transport"]>;

export interface RoundTiming {
  /** Workload before the fault, in ms. */
  beforeMs: number;
  /** How long the fault lasts, in ms: longer than the lease's TTL, so that a keep-alive stuck on the faulted member loses it. */
  faultMs: number;
  /** Workload after the fault is healed, in ms. */
  afterMs: number;
  /** A worker's pause between calls, in ms. */
  thinkMs: number;
  workersPerClient: number;
}

export const SHORT_TIMING: RoundTiming = { beforeMs: 500, faultMs: 6000, afterMs: 1500, thinkMs: 20, workersPerClient: 2 };

/** The kept lease's TTL, in seconds. */
export const LEASE_TTL_SECONDS = 5;

export interface RoundOptions {
  cluster: EtcdCluster;
  transport: Transport;
  fault: FaultName;
  /** The member to fault; 0 (the first endpoint of the client that keeps the lease and watches) by default. */
  target?: number;
  /** Make the target the leader before the round, the hardest case for most faults; otherwise whichever member leads stays. */
  targetLeads?: boolean;
  timing?: Partial<RoundTiming>;
  plant?: Plant;
  /** Where the history and, when it is not linearizable, its visualisation go: a path without extension. */
  artifact: string;
}

export interface RoundReport {
  transport: Transport;
  fault: FaultName;
  plant: Plant | undefined;
  targetWasLeader: boolean;
  checks: Record<CheckName, CheckResult>;
  stats: { operations: number; unknownOutcomes: number; failedCalls: Record<string, number>; watchResponses: number; renewals: number; durationMs: number };
}

/** Waits until every member is running and healthy and the cluster has a leader. */
async function settled(cluster: EtcdCluster): Promise<void> {
  await Promise.all(cluster.members.map((m) => m.waitHealthy()));
  await cluster.leader();
}

/** Resolves once `done()` holds, or after `timeoutMs`; says which. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Combines the results of one check over several watchers: failed if one failed, n/a if all were. */
function combine(results: CheckResult[]): CheckResult {
  const failed = results.filter((r) => r.status === "fail");
  if (failed.length > 0) return { status: "fail", detail: failed.map((r) => r.detail).join("; ") };
  if (results.every((r) => r.status === "n/a")) return { status: "n/a", detail: results.map((r) => r.detail).join("; ") };
  return { status: "pass", detail: results.map((r) => r.detail).filter(Boolean).join("; ") };
}

/**
 * One robustness round: a mixed workload from two clients (each on its own first member), two
 * watchers and a kept lease on the client whose first member is faulted, a fault in the middle,
 * then every check on what was recorded against etcd's own account (read over its gateway).
 */
export async function runRound(options: RoundOptions): Promise<RoundReport> {
  const { cluster, transport, fault, target = 0 } = options;
  const timing = { ...SHORT_TIMING, ...options.timing };
  const size = cluster.members.length;
  await settled(cluster);
  if (options.targetLeads) await cluster.makeLeader(cluster.members[target]!);
  const healthyUrl = cluster.members[(target + 1) % size]!.clientUrl;
  const prefix = `robustness/${fault}-${randomBytes(4).toString("hex")}/`;
  const { revision: initialRevision } = await readStore(healthyUrl, prefix);
  const recorder = new HistoryRecorder(initialRevision);
  const clock = () => recorder.nowMs();

  const lease: LeaseRecord = { ttlMs: LEASE_TTL_SECONDS * 1000, renewals: [], streams: [], streamFailures: [], serverSamples: [], endedAt: 0, fault: { start: 0, end: 0 } };
  const resumes: number[] = [];
  const planted = options.plant ? [plantMiddleware(options.plant)] : [];
  const endpointsFrom = (first: number) => cluster.members.map((_, i) => cluster.members[(first + i) % size]!.endpoint);
  const faulted = new Client({
    endpoints: endpointsFrom(target),
    transport,
    logger: { info: (_message, details) => void ("resumeRevisions" in details && resumes.push(clock())) },
    middleware: { inner: [keepAliveRecorder(lease, clock), ...planted] },
  });
  const other = new Client({ endpoints: endpointsFrom(target + 1), transport, middleware: { inner: planted } });
  // Watches the lease from the healthy members, past the proxies: the cluster's view, not the SDK's.
  const observer = new Client({ endpoints: cluster.members.filter((_, i) => i !== target).map((m) => m.directEndpoint), transport: "grpc" });
  const clients = [faulted, other, observer];
  const timers: NodeJS.Timeout[] = [];
  const watchers: WatchRecorder[] = [];
  let workload: Workload | undefined;
  /** Heals the fault while it is on: also when the round fails, so that the cluster serves the next. */
  let heal: (() => Promise<void>) | undefined;
  try {
    const granted = await faulted.lease.grant(LEASE_TTL_SECONDS);
    const keepAlive = await faulted.lease.keepAlive(granted.id);
    void keepAlive.lost.then((err) => {
      // After the observation the lease is revoked on purpose.
      if (err.reason !== "closed" && lease.endedAt === 0) lease.lost = { at: clock(), reason: err.reason };
    });
    timers.push(
      setInterval(() => {
        const at = clock();
        observer.lease.timeToLive(granted.id, { deadline: 1000 }).then(
          (r) => lease.serverSamples.push({ at, answeredAt: clock(), ttl: Number(r.ttl) }),
          () => undefined,
        );
      }, 500),
    );

    watchers.push(new WatchRecorder("watcher from the start", faulted, prefix, initialRevision + 1n, clock, resumes));
    workload = new Workload({ clients: [faulted, other], workersPerClient: timing.workersPerClient, prefix, recorder, thinkMs: timing.thinkMs });
    if (transport !== "gateway") {
      timers.push(
        setInterval(() => {
          for (const w of watchers) {
            try {
              w.requestProgress();
            } catch {
              // the watcher ended: its record says why
            }
          }
        }, 700),
      );
    }

    await sleep(timing.beforeMs);
    const targetWasLeader = (await cluster.leader()) === cluster.members[target];
    const faultStart = recorder.now();
    lease.fault.start = clock();
    heal = await injectFault(cluster, fault, target);
    // A watcher made during the fault, from a revision a little in the past: it must replay from there.
    const settle = Math.min(1500, timing.faultMs / 3);
    await sleep(settle);
    const seen = recorder.operations.reduce((max, op) => (op.output && BigInt(op.output.revision) > max ? BigInt(op.output.revision) : max), initialRevision);
    const oldRevision = seen - 5n > initialRevision ? seen - 5n : initialRevision + 1n;
    watchers.push(new WatchRecorder(`watcher made during the fault from revision ${oldRevision}`, faulted, prefix, oldRevision, clock, resumes));
    await sleep(timing.faultMs - settle);
    await heal();
    heal = undefined;
    const faultEnd = recorder.now();
    lease.fault.end = clock();
    recorder.annotate(faultStart, faultEnd, `${fault} member ${target}`);
    await sleep(timing.afterMs);
    const stoppedAt = clock();
    await workload.stop(10_000);
    const history = recorder.history();

    const { revision: finalRevision, store } = await readStore(healthyUrl, prefix);
    const caughtUp = await until(() => watchers.every((w) => w.upTo >= finalRevision), 10_000);
    // Over the gateway progress comes only from progressNotify, which etcd sends to idle watchers.
    if (caughtUp) await until(() => watchers.every((w) => w.notified), transport === "gateway" ? 3000 : 1000);
    const truth = await readHistory(healthyUrl, prefix, initialRevision + 1n, finalRevision);
    lease.endedAt = clock();
    for (const timer of timers.splice(0)) clearInterval(timer);
    const askedAt = clock();
    const finalLease = await observer.lease.timeToLive(granted.id, { deadline: 5000 }).catch(() => undefined);
    if (finalLease) lease.serverSamples.push({ at: askedAt, answeredAt: clock(), ttl: Number(finalLease.ttl) });
    await Promise.all(watchers.map((w) => w.stop()));
    await observer.lease.revoke(granted.id).catch(() => undefined);

    const records: WatchRecord[] = watchers.map((w) => w.record);
    const linearizable = await checkLinearizable(history, options.artifact);
    const checks: Record<CheckName, CheckResult> = {
      linearizable:
        linearizable.result === "Ok"
          ? { status: "pass", detail: `${linearizable.checked} operations, ${linearizable.unknownOutcomes} of unknown outcome` }
          : linearizable.result === "Unknown"
            ? { status: "n/a", detail: `porcupine did not finish on ${linearizable.checked} operations` }
            : { status: "fail", detail: `not linearizable; see ${linearizable.visualization}` },
      serializable: checkSerializable(history, truth, finalRevision),
      "writes-once": combine([checkTruthMatchesStore(truth, store), checkWritesOnce(history, truth)]),
      "watch-ordered": combine(records.map(checkOrdered)),
      "watch-unique": combine(records.map(checkUnique)),
      "watch-atomic": combine(records.map((r) => checkAtomic(r, truth))),
      "watch-reliable": combine(records.map((r) => checkReliable(r, truth, finalRevision))),
      "watch-resumable": combine(records.map((r) => checkResumable(r, truth))),
      "watch-progress": combine(records.map((r) => checkProgress(r, truth, finalRevision))),
      "lease-timely": checkLeaseTimely(lease),
      "lease-kept": checkLeaseKept(lease),
      available: checkAvailable(history, ["client on the faulted member", "client on a healthy member"], faultStart / 1e6, stoppedAt),
    };
    // What a failing check's detail comes from, for whoever digs into it.
    if (CHECKS.some((c) => checks[c].status === "fail")) {
      const evidence = { watchers: records, lease, truth, failures: recorder.failures };
      await writeFile(`${options.artifact}.records.json`, JSON.stringify(evidence, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value), 1));
    }
    const failedCalls: Record<string, number> = {};
    for (const f of recorder.failures) {
      const kind = f.error.split(":", 1)[0]!;
      failedCalls[kind] = (failedCalls[kind] ?? 0) + 1;
    }
    return {
      transport,
      fault,
      plant: options.plant,
      targetWasLeader,
      checks,
      stats: {
        operations: history.operations.length,
        unknownOutcomes: history.operations.filter((op) => op.return < 0).length,
        failedCalls,
        watchResponses: records.reduce((n, r) => n + r.responses.length, 0),
        renewals: lease.renewals.length,
        durationMs: clock(),
      },
    };
  } finally {
    for (const timer of timers) clearInterval(timer);
    await heal?.();
    await workload?.stop(0);
    await Promise.all(watchers.map((w) => w.stop()));
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** The artifact path of a round: `<dir>/<transport>-<fault>[-<plant>]-<n>`. */
export function artifactPath(dir: string, transport: Transport, fault: FaultName, round: number, plant?: Plant): string {
  return join(dir, `${transport}-${fault}${plant ? `-${plant}` : ""}-${round}`);
}
