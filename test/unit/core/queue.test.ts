import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../../../src/core/queue.js";

/*
 * A stream's responses pass through an AsyncQueue. Whether the queue lets go of one once it was
 * read shows only in memory figures (bench/), so it is checked here with weak references: a
 * queue that kept read items alive held a whole burst of watch responses, and the network
 * buffers they view, until a thousand more had passed.
 */

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Pushes `count` fresh objects and returns weak references to them. */
function pushFresh(queue: AsyncQueue<object>, count: number): WeakRef<object>[] {
  return Array.from({ length: count }, (_, i) => {
    const item = { i };
    queue.push(item);
    return new WeakRef(item);
  });
}

async function read(queue: AsyncQueue<object>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await queue.next();
}

/** Collects garbage once the current job is over (until then a WeakRef keeps its target). */
async function collected(refs: WeakRef<object>[]): Promise<boolean[]> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  return refs.map((ref) => ref.deref() === undefined);
}

describe("AsyncQueue", () => {
  it("keeps no item alive once it was read, whether the queue emptied or not", async () => {
    const queue = new AsyncQueue<object>();
    const refs = pushFresh(queue, 3);
    await read(queue, 2);
    expect(await collected(refs)).toEqual([true, true, false]);
    await read(queue, 1);
    expect(await collected(refs)).toEqual([true, true, true]);
  });

  it("reads in order across a drained queue and a reader that waited", async () => {
    const queue = new AsyncQueue<number>();
    queue.push(1);
    queue.push(2);
    expect((await queue.next()).value).toBe(1);
    expect((await queue.next()).value).toBe(2);
    const waiting = queue.next();
    queue.push(3);
    queue.push(4);
    queue.end();
    expect((await waiting).value).toBe(3);
    expect(await queue.next()).toEqual({ done: false, value: 4 });
    expect(await queue.next()).toEqual({ done: true, value: undefined });
  });
});
