import { describe, expect, it } from "vitest";
import { restart } from "../../../src/core/timers.js";

/*
 * Keep-alive renewals restart one timer per lease. Node's timers are restarted in place; a
 * browser's timer ids cannot be, and no etcd server can tell which path ran, so both are
 * checked here. The keep-alive suites run the Node path against etcd.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("restart", () => {
  it("starts a timer when there is none yet", () => {
    const made = setTimeout(() => undefined, 1000);
    expect(restart(undefined, () => made)).toBe(made);
    clearTimeout(made);
  });

  it("restarts a Node timer in place, for its delay counted from the restart, once", async () => {
    let fired = 0;
    const timer = setTimeout(() => fired++, 100);
    await sleep(60);
    const restartedAt = Date.now();
    expect(restart(timer, () => setTimeout(() => fired++, 100))).toBe(timer);
    await sleep(60);
    expect(fired).toBe(0); // the first start's 100 ms are over, the restart's are not
    while (fired === 0) await sleep(10);
    expect(Date.now() - restartedAt).toBeGreaterThanOrEqual(99);
    await sleep(150);
    expect(fired).toBe(1);
  });

  it("restarts a timer that already fired", async () => {
    let fired = 0;
    const timer = setTimeout(() => fired++, 1);
    await sleep(20);
    restart(timer, () => setTimeout(() => fired++, 1));
    await sleep(20);
    expect(fired).toBe(2);
  });

  it("replaces a timer id it cannot restart (a browser's number) with a new timer, clearing the old", async () => {
    let oldFired = false;
    const old = setTimeout(() => (oldFired = true), 20);
    const browserId = Number(old[Symbol.toPrimitive]()); // what clearTimeout accepts in a browser
    let started = 0;
    const made = restart(browserId, () => ++started);
    expect([made, started]).toEqual([1, 1]);
    await sleep(60);
    expect(oldFired).toBe(false);
  });
});
