import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../../../src/core/queue.js";
import { type CallSource, sendRequests, StreamCall } from "../../../src/wire/stream-call.js";

/*
 * A bidirectional call whose signal fired is cancelled at once, but its stream closes (and the
 * call finishes) a little later. A request written in between went into the cancelled stream and
 * failed there unseen; no server can show whether it was written, so a fake call source does.
 */

const idleSource = (): CallSource & { cancelled: number } => ({
  cancelled: 0,
  cancel() {
    this.cancelled++;
  },
  pause: () => undefined,
  resume: () => undefined,
  isPaused: () => false,
});

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("sendRequests", () => {
  it("sends nothing more once the call's signal fired, before the call itself ends", async () => {
    const source = idleSource();
    const controller = new AbortController();
    const call = new StreamCall(source, controller.signal);
    const written: number[] = [];
    let ended = false;
    const sink = { write: (request: unknown) => written.push(request as number) > 0, drained: () => Promise.resolve(), end: () => (ended = true) };
    const requests = new AsyncQueue<number>();
    const sending = sendRequests(requests.drain(), sink, call);
    requests.push(1);
    await tick();
    controller.abort();
    requests.push(2);
    requests.end();
    await sending;
    expect(written).toEqual([1]);
    expect(ended).toBe(false);
    expect(source.cancelled).toBe(1);
  });

  it("sends nothing on a call whose signal had fired before it started", async () => {
    const source = idleSource();
    const call = new StreamCall(source, AbortSignal.abort());
    const written: unknown[] = [];
    const requests = new AsyncQueue<number>();
    requests.push(1);
    requests.end();
    await sendRequests(requests.drain(), { write: (request) => written.push(request) > 0, drained: () => Promise.resolve(), end: () => undefined }, call);
    expect(written).toEqual([]);
    expect(source.cancelled).toBe(1);
  });
});
