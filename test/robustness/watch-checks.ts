import type { BaseClient, Watcher, WatchResponse } from "../../src/index.js";
import { describeError } from "./history.js";

/** An event as the checks compare them; revisions as bigint. */
export interface RecordedEvent {
  type: "put" | "delete";
  /** Without the round's prefix. */
  key: string;
  value: string;
  modRevision: bigint;
}

export interface RecordedWatchResponse {
  /** ms since the round began. */
  at: number;
  revision: bigint;
  progress: boolean;
  events: RecordedEvent[];
}

/** What one watcher delivered, and how it was made. */
export interface WatchRecord {
  name: string;
  startRevision: bigint;
  responses: RecordedWatchResponse[];
  /** When its client's watch stream was opened again (ms since the round began). */
  resumes: number[];
  /** The error the watcher ended with, if it did. */
  error?: string;
}

/** The result of one check: "n/a" when it could not be judged (what it needs did not happen). */
export interface CheckResult {
  status: "pass" | "fail" | "n/a";
  detail: string;
  /** The figure the check compared with its limit, where it has one: the longest stall in ms, say. */
  measuredMs?: number;
}

const pass = (detail = ""): CheckResult => ({ status: "pass", detail });
const fail = (detail: string): CheckResult => ({ status: "fail", detail });

/** Records every response of a watcher on `prefix` from `startRevision` until stop(). */
export class WatchRecorder {
  readonly record: WatchRecord;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;
  private readonly watcher: Watcher;

  constructor(
    name: string,
    client: BaseClient,
    private readonly prefix: string,
    startRevision: bigint,
    clock: () => number,
    /** The resume times of the client's watch stream, shared with the client's logger. */
    resumes: number[],
  ) {
    const record: WatchRecord = { name, startRevision, responses: [], resumes };
    this.record = record;
    const watcher = client.watch(prefix, { prefix: true, startRevision, progressNotify: true, signal: this.abort.signal });
    this.watcher = watcher;
    this.done = (async () => {
      try {
        for await (const response of watcher) record.responses.push(this.toRecorded(response, clock()));
      } catch (err) {
        if (!this.abort.signal.aborted) record.error = describeError(err);
      }
    })();
  }

  private toRecorded(response: WatchResponse, at: number): RecordedWatchResponse {
    return {
      at,
      revision: response.header.revision,
      progress: response.progress,
      events: response.events.map((e) => ({ type: e.type, key: e.kv.keyString.slice(this.prefix.length), value: e.kv.valueString, modRevision: e.kv.modRevision })),
    };
  }

  /** The last revision the watcher is known to be up to date with: its last event's, or a progress notification's. */
  get upTo(): bigint {
    let upTo = this.record.startRevision - 1n;
    for (const r of this.record.responses) {
      const last = r.progress ? r.revision : (r.events.at(-1)?.modRevision ?? upTo);
      if (last > upTo) upTo = last;
    }
    return upTo;
  }

  /** Asks etcd for a progress notification (gRPC transports; the gateway relies on progressNotify). */
  requestProgress(): void {
    this.watcher.requestProgress();
  }

  /** Whether a progress notification came. */
  get notified(): boolean {
    return this.record.responses.some((r) => r.progress);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

const describeEvent = (e: RecordedEvent) => `${e.type} ${e.key}=${e.value}@${e.modRevision}`;

/** The events a watcher delivered, in order, with the index of the response each came in. */
function delivered(record: WatchRecord): { event: RecordedEvent; response: number }[] {
  return record.responses.flatMap((r, response) => r.events.map((event) => ({ event, response })));
}

/** Ordered: event revisions never go back, and a later response starts after the previous one ended. */
export function checkOrdered(record: WatchRecord): CheckResult {
  let last: { event: RecordedEvent; response: number } | undefined;
  for (const current of delivered(record)) {
    if (last) {
      const back = current.event.modRevision < last.event.modRevision;
      const sameRevisionAcross = current.event.modRevision === last.event.modRevision && current.response !== last.response;
      if (back || sameRevisionAcross) return fail(`${record.name}: ${describeEvent(current.event)} came after ${describeEvent(last.event)}`);
    }
    last = current;
  }
  return pass();
}

/** Unique: no event (revision and key) delivered twice. */
export function checkUnique(record: WatchRecord): CheckResult {
  const seen = new Set<string>();
  for (const { event } of delivered(record)) {
    const id = `${event.modRevision}/${event.key}`;
    if (seen.has(id)) return fail(`${record.name}: ${describeEvent(event)} delivered twice`);
    seen.add(id);
  }
  return pass();
}

/** The events of each revision in the truth. */
function byRevision(events: RecordedEvent[]): Map<bigint, RecordedEvent[]> {
  const map = new Map<bigint, RecordedEvent[]>();
  for (const e of events) {
    const list = map.get(e.modRevision) ?? [];
    list.push(e);
    map.set(e.modRevision, list);
  }
  return map;
}

/** Atomic: all the events of a revision come in one response, none held back for a later one. */
export function checkAtomic(record: WatchRecord, truth: RecordedEvent[]): CheckResult {
  const expected = byRevision(truth);
  const seenIn = new Map<bigint, number>();
  for (const [index, response] of record.responses.entries()) {
    for (const [revision, events] of byRevision(response.events)) {
      const earlier = seenIn.get(revision);
      if (earlier !== undefined) return fail(`${record.name}: revision ${revision} split across responses ${earlier} and ${index}`);
      seenIn.set(revision, index);
      const want = expected.get(revision)?.length ?? 0;
      if (events.length !== want) return fail(`${record.name}: response ${index} has ${events.length} of the ${want} events of revision ${revision}`);
    }
  }
  return pass();
}

/**
 * Reliable: the watcher delivered exactly the truth's events from its start revision on, with
 * no gap, and caught up with the final revision.
 */
export function checkReliable(record: WatchRecord, truth: RecordedEvent[], finalRevision: bigint): CheckResult {
  const want = truth.filter((e) => e.modRevision >= record.startRevision);
  const got = delivered(record).map((d) => d.event);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i];
    const g = got[i];
    if (!g) {
      const where = got.length > 0 ? `after ${describeEvent(got.at(-1)!)}` : "from its start";
      return fail(`${record.name}: stopped ${where}: ${want.length - got.length} events up to revision ${finalRevision} never came${record.error ? ` (it ended with ${record.error})` : ""}`);
    }
    if (!w) return fail(`${record.name}: delivered ${describeEvent(g)}, which etcd's history does not have`);
    if (w.modRevision !== g.modRevision || w.key !== g.key || w.type !== g.type || w.value !== g.value) {
      return fail(`${record.name}: expected ${describeEvent(w)} but got ${describeEvent(g)}${i > 0 ? ` after ${describeEvent(got[i - 1]!)}` : " first"}`);
    }
  }
  return pass(`${got.length} events`);
}

/**
 * Resumable: a watcher started at an old revision first delivers etcd's first event at or after
 * it; and where the client's watch stream was opened again, the watcher went on with the event
 * after the last one it had delivered: none skipped, none repeated.
 */
export function checkResumable(record: WatchRecord, truth: RecordedEvent[]): CheckResult {
  const want = truth.filter((e) => e.modRevision >= record.startRevision);
  const got = delivered(record).map((d) => ({ event: d.event, at: record.responses[d.response]!.at }));
  if (got.length === 0) return { status: "n/a", detail: `${record.name}: delivered no event` };
  if (want.length > 0 && got[0]!.event.modRevision !== want[0]!.modRevision) {
    return fail(`${record.name}: started at revision ${record.startRevision}, first delivered ${describeEvent(got[0]!.event)}, but etcd's first is ${describeEvent(want[0]!)}`);
  }
  for (const resume of record.resumes) {
    const next = got.findIndex((g) => g.at >= resume);
    if (next <= 0) continue;
    const before = got[next - 1]!.event;
    const after = got[next]!.event;
    const position = want.findIndex((e) => e.modRevision === before.modRevision && e.key === before.key);
    const expected = position >= 0 ? want[position + 1] : undefined;
    if (!expected || expected.modRevision !== after.modRevision || expected.key !== after.key) {
      return fail(`${record.name}: resumed at ${resume.toFixed(0)} ms after ${describeEvent(before)} with ${describeEvent(after)}; etcd's next is ${expected ? describeEvent(expected) : "none"}`);
    }
  }
  return pass(`from revision ${record.startRevision}, ${record.resumes.length} resumes of the stream`);
}

/**
 * Progress notifications never ahead of the events: one at revision R comes only after every
 * event up to R was delivered, and R is no later than the store's final revision. An event
 * response's header revision is at least its events'.
 */
export function checkProgress(record: WatchRecord, truth: RecordedEvent[], finalRevision: bigint): CheckResult {
  const want = truth.filter((e) => e.modRevision >= record.startRevision);
  const deliveredSoFar = new Set<string>();
  const id = (e: RecordedEvent) => `${e.modRevision}/${e.key}`;
  let notifications = 0;
  for (const response of record.responses) {
    if (response.progress) {
      notifications++;
      if (response.revision > finalRevision) return fail(`${record.name}: progress at revision ${response.revision}, after the store's final revision ${finalRevision}`);
      const missing = want.find((e) => e.modRevision <= response.revision && !deliveredSoFar.has(id(e)));
      if (missing) return fail(`${record.name}: progress at revision ${response.revision} (at ${response.at.toFixed(0)} ms) before ${describeEvent(missing)} was delivered`);
    } else {
      const last = response.events.at(-1);
      if (last && response.revision < last.modRevision) return fail(`${record.name}: a response at header revision ${response.revision} carried ${describeEvent(last)}`);
      for (const e of response.events) deliveredSoFar.add(id(e));
    }
  }
  if (notifications === 0) return { status: "n/a", detail: `${record.name}: no progress notification came` };
  return pass(`${notifications} notifications`);
}

/** The store a sequence of events leaves, from an empty one: key -> value and mod revision. */
export function replay(events: RecordedEvent[], upTo?: bigint): Map<string, { value: string; modRevision: bigint }> {
  const store = new Map<string, { value: string; modRevision: bigint }>();
  for (const e of events) {
    if (upTo !== undefined && e.modRevision > upTo) break;
    if (e.type === "put") store.set(e.key, { value: e.value, modRevision: e.modRevision });
    else store.delete(e.key);
  }
  return store;
}

/** The truth, replayed, is the final store: etcd's own history is whole (a check of the checks). */
export function checkTruthMatchesStore(truth: RecordedEvent[], store: Map<string, { value: string; modRevision: bigint }>): CheckResult {
  const replayed = replay(truth);
  const show = (m: typeof store) => JSON.stringify([...m].sort().map(([k, v]) => `${k}=${v.value}@${v.modRevision}`));
  if (show(replayed) !== show(store)) return fail(`etcd's watch history replays to ${show(replayed)} but the store holds ${show(store)}`);
  return pass();
}
