import { describe, expect, it } from "vitest";
import { answer, type Attempt, unaryResponse, untilFailure } from "../../../src/core/attempt.js";

/*
 * The stand-ins for a unary attempt: fallbacks gathered on one answer must act exactly as if
 * each middleware had wrapped the attempt below it. The integration suites run them against
 * etcd on every call; the order of fallbacks on stacked failures is only logic, scripted here.
 */

const path = "/etcdserverpb.KV/Range";

async function* answering(value: unknown): Attempt {
  return value;
}

describe("unary attempt stand-ins", () => {
  it("hand a response up past every fallback untouched", async () => {
    const seen: unknown[] = [];
    const attempt = untilFailure(untilFailure(answer(Promise.resolve("ok"), path), (f) => (seen.push(f), answering("inner"))), (f) => (seen.push(f), answering("outer")));
    await expect(unaryResponse(attempt, path)).resolves.toBe("ok");
    expect(seen).toEqual([]);
  });

  it("give a failure to the innermost fallback first, and the outer one only what that one fails with", async () => {
    const seen: string[] = [];
    const inner = (failure: unknown): Attempt => {
      seen.push(`inner saw ${String(failure)}`);
      throw new Error("mapped");
    };
    const outer = (failure: unknown): Attempt => {
      seen.push(`outer saw ${(failure as Error).message}`);
      return answering("recovered");
    };
    const attempt = untilFailure(untilFailure(answer(Promise.reject("lost"), path), inner), outer);
    await expect(unaryResponse(attempt, path)).resolves.toBe("recovered");
    expect(seen).toEqual(["inner saw lost", "outer saw mapped"]);
  });

  it("stop at the first fallback that answers", async () => {
    let outerCalls = 0;
    const attempt = untilFailure(
      untilFailure(answer(Promise.reject(new Error("lost")), path), () => answering("retried")),
      () => (outerCalls++, answering("outer")),
    );
    await expect(unaryResponse(attempt, path)).resolves.toBe("retried");
    expect(outerCalls).toBe(0);
  });

  it("read as an async generator by a middleware of the usual kind: one final response, then finished", async () => {
    const attempt = untilFailure(answer(Promise.reject(new Error("lost")), path), () => answering("retried"));
    const passedThrough = (async function* () {
      return yield* attempt;
    })();
    await expect(passedThrough.next()).resolves.toEqual({ done: true, value: "retried" });
    await expect(attempt.next()).resolves.toEqual({ done: true, value: undefined });
    // Once read, a further fallback wraps it rather than joining it.
    await expect(unaryResponse(untilFailure(attempt, () => answering("late")), path)).rejects.toThrow(/returned nothing/);
  });

  it("throw the last failure when every fallback throws it on", async () => {
    const attempt = untilFailure(
      untilFailure(answer(Promise.reject(new Error("lost")), path), (f) => {
        throw f;
      }),
      (f) => {
        throw new Error(`outer: ${(f as Error).message}`);
      },
    );
    await expect(unaryResponse(attempt, path)).rejects.toThrow("outer: lost");
  });
});
