import { ClientError, Status } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { batchedRequests, type OpenBody } from "../../../src/wire/gateway/streams.js";

// How batches form depends on timing that a real gateway only shows by chance (against etcd:
// test/integration/gateway-batching.test.ts and the gateway keepalive suite). A fake body opener
// answers each message of a body, or only the first `answering` of them.
const batching = { inFlight: 4, bodyBytes: 512, spacingMs: 200 };
/** 28 bytes of JSON, as a renewal of a 19-digit lease ID is: 17 fit in 512 bytes. */
const message = (i: number) => JSON.stringify({ ID: String(i).padStart(19, "0") });

async function* messages(count: number) {
  for (let i = 0; i < count; i++) yield message(i);
}

function fakeGateway(answering = Infinity): { bodies: string[][]; open: OpenBody<string> } {
  const bodies: string[][] = [];
  const open = async function* (body: string) {
    const sent = body.split("\n");
    bodies.push(sent);
    yield* sent.slice(0, answering);
  };
  return { bodies, open };
}

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const answers: string[] = [];
  for await (const answer of stream) answers.push(answer);
  return answers;
}

describe("batchedRequests", () => {
  it("sends a lone message at once, a full body at once, and the rest after the spacing", async () => {
    const { bodies, open } = fakeGateway();
    const started = performance.now();
    const answers = await collect(batchedRequests(messages(40), (m) => m, open, batching, undefined, "/p"));
    expect(bodies.map((b) => b.length)).toEqual([1, 17, 17, 5]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(answers.sort()).toEqual(Array.from({ length: 40 }, (_, i) => message(i)));
  });

  it("sends again, in order, what a body cut short left unanswered", async () => {
    const { bodies, open } = fakeGateway(5);
    const answers = await collect(batchedRequests(messages(12), (m) => m, open, { ...batching, spacingMs: 50 }, undefined, "/p"));
    expect(answers).toEqual(Array.from({ length: 12 }, (_, i) => message(i)));
    // The first alone, the other 11 after the spacing: 5 answered, 6 sent again, then 1.
    expect(bodies.map((b) => b.length)).toEqual([1, 11, 6, 1]);
    expect(bodies[2]).toEqual(bodies[1]!.slice(5));
  });

  it("fails as Unavailable when a body gets no answer at all, rather than sending it forever", async () => {
    const { open } = fakeGateway(0);
    const failure = await collect(batchedRequests(messages(3), (m) => m, open, batching, undefined, "/p")).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ClientError);
    expect((failure as ClientError).code).toBe(Status.UNAVAILABLE);
  });
});
