import { EndpointError, InvalidArgumentError } from "../../src/index.js";
import { deliveryOf } from "../../src/core/wire-failure.js";

/**
 * The history format the Go checker reads (test/robustness/checker/main.go): int64s as decimal
 * strings, times in ns since the round began.
 */

/** A KV operation on one key of the workload; `key` is the key's name without the round's prefix. */
export type KvInput =
  | { op: "put"; key: string; value: string }
  | { op: "get"; key: string; serializable?: boolean }
  | { op: "delete"; key: string }
  /** If the key's mod_revision is `expectModRevision` (0: absent), put `value`; else get it. */
  | { op: "txn"; key: string; expectModRevision: string; value: string };

/** What etcd answered; which fields are set depends on the operation. */
export interface KvOutput {
  revision: string;
  found?: boolean;
  value?: string;
  modRevision?: string;
  succeeded?: boolean;
  deleted?: string;
}

export interface RecordedOperation {
  /** The worker that made the call, as porcupine's client id; a worker takes a new one after a call of unknown outcome. */
  client: number;
  call: number;
  /** -1: the call failed and whether it took effect is unknown. */
  return: number;
  input: KvInput;
  output: KvOutput | null;
  /** How the call failed, for the visualisation. */
  error?: string;
  /** Which SDK client made the call (not the checker's business: the availability check's). */
  sdkClient: number;
  /** Made by a client's availability probe. */
  probe?: boolean;
}

/** A stretch of the round worth marking in the visualisation: a fault. */
export interface Annotation {
  start: number;
  end: number;
  description: string;
}

export interface KvHistory {
  /** The store's revision when the round began; the round's keys were absent then. */
  initialRevision: string;
  operations: RecordedOperation[];
  annotations: Annotation[];
}

/**
 * Whether a failed call provably changed nothing: the SDK refused its input, or says no byte of
 * it reached a server (an EndpointError that no endpoint could be reached, or whose
 * cause is a wire failure "never-sent" / "refused-unread"). Any other failure of a write leaves
 * its outcome unknown: a lost connection, a deadline, and etcd's own timeouts too (a proposal
 * that timed out may still be applied).
 */
export function neverApplied(err: unknown): boolean {
  // Not ClientClosedError: close() also ends calls already sent.
  if (err instanceof InvalidArgumentError) return true;
  if (!(err instanceof EndpointError)) return false;
  if (err.noneReachable) return true;
  const delivery = deliveryOf(err.cause);
  return delivery === "never-sent" || delivery === "refused-unread";
}

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** A failed call: an error the recorder kept, for the report. */
export interface RecordedFailure {
  at: number;
  input: KvInput;
  error: string;
  applied: "no" | "unknown";
}

/** Records calls with their invocation and completion times, as porcupine wants them. */
export class HistoryRecorder {
  readonly operations: RecordedOperation[] = [];
  /** Writes called and not yet returned: unknown outcomes if the history is taken before they return. */
  private readonly inFlight = new Set<RecordedOperation>();
  readonly failures: RecordedFailure[] = [];
  readonly annotations: Annotation[] = [];
  private readonly origin = performance.now();

  constructor(readonly initialRevision: bigint) {}

  /** ns since the round began. */
  now(): number {
    return Math.round((performance.now() - this.origin) * 1e6);
  }

  /** ms since the round began, for reports. */
  nowMs(): number {
    return performance.now() - this.origin;
  }

  /**
   * Makes a call and records it: a success with its output; a failed write whose effect is
   * unknown as never returning; a failed read, or a write the SDK says was never sent, not at all
   * (neither constrains the history). Resolves with the output, or undefined after a failure, and
   * says whether the outcome was unknown.
   */
  async record(client: number, caller: { sdkClient: number; probe: boolean }, input: KvInput, call: () => Promise<KvOutput>): Promise<{ output?: KvOutput; unknown: boolean }> {
    const start = this.now();
    const sdkClient = caller.sdkClient;
    const probe = caller.probe || undefined;
    const pending: RecordedOperation = { client, call: start, return: -1, input, output: null, error: "still in flight when the history was taken", sdkClient, probe };
    if (input.op !== "get") this.inFlight.add(pending);
    try {
      const output = await call();
      this.operations.push({ client, call: start, return: this.now(), input, output, sdkClient, probe });
      return { output, unknown: false };
    } catch (err) {
      const error = describeError(err);
      const write = input.op !== "get";
      const unknown = write && !neverApplied(err);
      this.failures.push({ at: this.now() / 1e6, input, error, applied: unknown ? "unknown" : "no" });
      if (unknown) this.operations.push({ client, call: start, return: -1, input, output: null, error, sdkClient, probe });
      return { unknown };
    } finally {
      this.inFlight.delete(pending);
    }
  }

  annotate(start: number, end: number, description: string): void {
    this.annotations.push({ start, end, description });
  }

  /** The history so far; writes still in flight are in it with an unknown outcome. */
  history(): KvHistory {
    return { initialRevision: String(this.initialRevision), operations: [...this.operations, ...this.inFlight], annotations: this.annotations };
  }
}
