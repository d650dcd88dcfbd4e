/** Checks of a KV history against etcd's own account of the round (its watch history), besides porcupine's. */
import type { KvHistory } from "./history.js";
import { type CheckResult, type RecordedEvent, replay } from "./watch-checks.js";

/**
 * The longest a client's probe may go without a read answered while one member is faulted, in
 * ms: a quorum stays reachable, so a client that moves off the faulted member in time keeps
 * reading.
 */
export const AVAILABILITY_LIMIT_MS = 5000;

/** Serializable reads may be stale, but each must show the store as it was at the revision it reports. */
export function checkSerializable(history: KvHistory, truth: RecordedEvent[], finalRevision: bigint): CheckResult {
  let checked = 0;
  for (const op of history.operations) {
    if (op.input.op !== "get" || !op.input.serializable || !op.output) continue;
    checked++;
    const revision = BigInt(op.output.revision);
    if (revision > finalRevision) return { status: "fail", detail: `a serializable read reported revision ${revision}, after the final ${finalRevision}` };
    const was = replay(truth, revision).get(op.input.key);
    const got = op.output.found ? `${op.output.value}@${op.output.modRevision}` : "absent";
    const want = was ? `${was.value}@${was.modRevision}` : "absent";
    if (got !== want) return { status: "fail", detail: `serializable read of ${op.input.key} at revision ${revision} (at ${(op.call / 1e6).toFixed(0)} ms) saw ${got}; etcd had ${want} then` };
  }
  return checked > 0 ? { status: "pass", detail: `${checked} reads` } : { status: "n/a", detail: "no serializable read succeeded" };
}

/** Every value is written once, at the revision its write reported: no write applied twice or elsewhere. */
export function checkWritesOnce(history: KvHistory, truth: RecordedEvent[]): CheckResult {
  const revisions = new Map<string, bigint[]>();
  for (const e of truth) if (e.type === "put") revisions.set(e.value, [...(revisions.get(e.value) ?? []), e.modRevision]);
  for (const [value, at] of revisions) if (at.length > 1) return { status: "fail", detail: `value ${value} was written ${at.length} times, at revisions ${at.join(", ")}` };
  for (const op of history.operations) {
    const wrote = op.output && (op.input.op === "put" || (op.input.op === "txn" && op.output.succeeded));
    if (!wrote || !("value" in op.input)) continue;
    const at = revisions.get(op.input.value)?.[0];
    if (String(at) !== op.output!.revision) return { status: "fail", detail: `put of ${op.input.value} reported revision ${op.output!.revision}, but etcd's history has it at ${at ?? "no revision"}` };
  }
  return { status: "pass", detail: `${revisions.size} values` };
}

/** Each client's probe kept getting answers while one member was faulted: no stall longer than the limit. */
export function checkAvailable(history: KvHistory, clients: string[], from: number, to: number): CheckResult {
  const stalls = clients.map((name, sdkClient) => {
    const answered = history.operations.filter((op) => op.probe && op.sdkClient === sdkClient && op.return >= 0);
    const times = answered.map((op) => op.return / 1e6).filter((t) => t >= from && t <= to);
    times.sort((a, b) => a - b);
    let longest = { gap: 0, start: from };
    let previous = from;
    for (const t of [...times, to]) {
      if (t - previous > longest.gap) longest = { gap: t - previous, start: previous };
      previous = t;
    }
    return { name, ...longest };
  });
  const detail = stalls.map((s) => `${s.name}: reads stalled ${s.gap.toFixed(0)} ms from ${s.start.toFixed(0)} ms`).join("; ");
  const measuredMs = Math.max(...stalls.map((s) => s.gap));
  return { status: measuredMs > AVAILABILITY_LIMIT_MS ? "fail" : "pass", detail, measuredMs };
}

