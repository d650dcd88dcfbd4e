import { describe } from "./bytes.js";
import { DeadlineExceededError, InvalidArgumentError } from "./errors.js";

/**
 * The AbortSignal a caller gave, checked: anything else is refused before it is listened to (a
 * listener that could not be added or removed would throw where no caller can catch it).
 */
export function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  const candidate = signal as Partial<AbortSignal> | null;
  if (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.aborted === "boolean" &&
    typeof candidate.addEventListener === "function" &&
    typeof candidate.removeEventListener === "function"
  ) {
    return signal as AbortSignal;
  }
  throw new InvalidArgumentError(what, `must be an AbortSignal, got ${describe(signal)}`);
}

/**
 * A call's deadline, checked: a valid Date, or a finite number of ms from now. One that has passed
 * already fails the call at once, as on every transport the call would fail on sending.
 */
export function checkDeadline(deadline: unknown, what: string): Date | number | undefined {
  if (deadline === undefined) return undefined;
  const at = deadline instanceof Date ? deadline.getTime() : typeof deadline === "number" ? Date.now() + deadline : Number.NaN;
  if (!Number.isFinite(at)) throw new InvalidArgumentError(what, `must be a Date or a finite number of milliseconds from now, got ${describe(deadline)}`);
  if (at <= Date.now()) throw new DeadlineExceededError(`the ${what} had passed before the call was made`, { outcome: "not-applied" });
  return deadline as Date | number;
}
