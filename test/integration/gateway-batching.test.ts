import { describe, expect, it } from "vitest";
import { streamedResults } from "../../src/wire/gateway/json.js";
import { batchedRequests } from "../../src/wire/gateway/streams.js";
import { useCluster } from "../helpers.js";

const etcd = useCluster();

describe("keep-alives batched over etcd's HTTP gateway", () => {
  it("sends again what a body longer than the gateway's first read lost, in order, once each", async () => {
    const leases = await Promise.all(Array.from({ length: 20 }, () => etcd.client.lease.grant(60)));
    const url = `${etcd.cluster.members[0]!.clientUrl}/v3/lease/keepalive`;
    const bodies: { sent: number; answered: number }[] = [];
    const open = async function* (body: string, signal: AbortSignal) {
      const post = { sent: body.split("\n").length, answered: 0 };
      bodies.push(post);
      const response = await fetch(url, { method: "POST", body, signal });
      for await (const result of streamedResults(response.body!, "LeaseKeepAlive")) {
        post.answered++;
        yield (result as { ID: string }).ID;
      }
    };
    // 8 KB bodies of ~290 renewals: Go's HTTP/1.1 server cuts about half of them short.
    const ids = Array.from({ length: 20_000 }, (_, i) => leases[i % leases.length]!.id.toString());
    async function* requests() {
      yield* ids;
    }
    const answers: string[] = [];
    for await (const id of batchedRequests(requests(), (id) => JSON.stringify({ ID: id }), open, { inFlight: 1, bodyBytes: 8192, spacingMs: 0 }, undefined, "LeaseKeepAlive")) {
      answers.push(id);
    }
    expect(answers).toEqual(ids);
    expect(bodies.filter((b) => b.answered < b.sent).length).toBeGreaterThan(0);
    expect(bodies.every((b) => b.answered > 0)).toBe(true);
  });
});
