import { InvalidArgumentError } from "../core/errors.js";
import { unref } from "../core/timers.js";

/**
 * The time the in-memory etcd runs on: leases expire by it and watch progress notifications tick
 * on it. The system clock by default; a {@link ManualClock} lets a test move time itself.
 */
export interface Clock {
  /** The current time, in milliseconds. */
  now(): number;
  /** Calls `callback` once `delayMs` have passed on this clock; the function returned cancels it. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

/** The longest delay a platform timer takes (Node fires longer ones at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Real time: Date.now() and platform timers, which never keep a Node process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const due = Date.now() + delayMs;
    let timer: ReturnType<typeof setTimeout>;
    // A lease of years is reached in steps of the longest delay a timer takes.
    const arm = () => {
      timer = unref(setTimeout(() => (Date.now() >= due ? callback() : arm()), Math.min(Math.max(0, due - Date.now()), MAX_TIMER_MS)));
    };
    arm();
    return () => clearTimeout(timer);
  },
};

interface ManualTimer {
  due: number;
  /** Set order, which orders timers due at the same instant. */
  seq: number;
  callback: () => void;
}

/**
 * A clock that moves only when told to: a test grants a lease, calls `advance(ttlMs)` and the
 * lease has expired, its keys deleted and its watchers told, before `advance` returns. It is the
 * server's time only: the clients' own timers (keep-alive renewals, call deadlines) keep real time.
 *
 * @example
 * ```ts
 * import { ManualClock, MemoryEtcd } from "etcd-sdk/testing";
 *
 * const clock = new ManualClock();
 * await using etcd = new MemoryEtcd({ clock });
 * const memory = etcd.client();
 * const { id } = await memory.lease.grant(10);
 * await memory.kv.put("session", "alive", { lease: id });
 * clock.advance(10_000);
 * console.log((await memory.kv.get("session")).count); // 0n
 * ```
 */
export class ManualClock implements Clock {
  private time: number;
  private timers: ManualTimer[] = [];
  private nextSeq = 0;

  /** @param startMs the time the clock shows at first, in milliseconds. */
  constructor(startMs = 0) {
    if (!Number.isFinite(startMs)) throw new InvalidArgumentError("ManualClock startMs", `must be a finite number, got ${String(startMs)}`);
    this.time = startMs;
  }

  /** The time the clock shows, in milliseconds. */
  now(): number {
    return this.time;
  }

  /** Calls `callback` when `advance` moves the clock `delayMs` on from now; the function returned cancels it. */
  setTimer(callback: () => void, delayMs: number): () => void {
    const timer: ManualTimer = { due: this.time + Math.max(0, delayMs), seq: this.nextSeq++, callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /**
   * Moves the clock `ms` forward, firing every timer that falls due on the way at its own
   * instant, in order: what those timers do (leases expiring, progress notifications) has
   * happened when it returns.
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError("advance ms", `must be a finite number, not negative, got ${String(ms)}`);
    const target = this.time + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.due;
      next.callback();
    }
    this.time = target;
  }

  private nextDue(until: number): ManualTimer | undefined {
    let next: ManualTimer | undefined;
    for (const timer of this.timers) {
      if (timer.due > until) continue;
      if (!next || timer.due < next.due || (timer.due === next.due && timer.seq < next.seq)) next = timer;
    }
    return next;
  }
}
