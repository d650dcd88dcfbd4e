import { createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ClientMiddleware } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SnapshotIntegrityError } from "../../../src/index.js";
import { resolveEtcdutl } from "../../harness/etcd-binary.js";
import { clientFor, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();
let etcdutl: string;
let dir: string;
beforeAll(async () => {
  // Built from its Go module on first use, like etcd itself.
  etcdutl = await resolveEtcdutl();
  dir = await mkdtemp(join(tmpdir(), "etcd-snapshot-"));
}, 300_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("snapshot", () => {
  it("streams a snapshot to a file that etcdutl restores with the data written before it", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    for (let i = 0; i < 50; i++) await client.kv.put(`${p}${i}`, `value ${i}`.repeat(100));
    const file = join(dir, "backup.db");
    // Readable.from pulls a chunk only when the file has taken the last one: backpressure.
    await pipeline(Readable.from(client.maintenance.snapshot()), createWriteStream(file));
    expect((await stat(file)).size).toBeGreaterThan(50 * 700);

    await using restored = await startCluster(1, [], undefined, { etcdutl, snapshot: file });
    await using reader = clientFor(restored);
    const res = await reader.kv.get(p, { prefix: true });
    expect(res.count).toBe(50n);
    expect(res.kvs.find((kv) => kv.keyString === `${p}7`)?.valueString).toBe("value 7".repeat(100));
  }, 60_000);

  it("refuses a snapshot whose checksum does not match", async () => {
    let flipped = false;
    const corrupt: ClientMiddleware = async function* (call, options) {
      if (!call.responseStream) return yield* call.next(call.request, options);
      for await (const chunk of call.next(call.request, options) as AsyncIterable<{ blob?: Uint8Array }>) {
        if (!flipped && chunk.blob && chunk.blob.length > 100) {
          chunk.blob[50]! ^= 0xff;
          flipped = true;
        }
        yield chunk as never;
      }
    } as ClientMiddleware;
    await using client = clientFor(etcd.cluster, { middleware: { inner: [corrupt] } });
    const chunks: Uint8Array[] = [];
    const err = await (async () => {
      for await (const chunk of client.maintenance.snapshot()) chunks.push(chunk);
    })().catch((e: unknown) => e);
    expect(flipped).toBe(true);
    expect(err).toBeInstanceOf(SnapshotIntegrityError);
    // The checksum itself (the last 32 bytes) was never handed out.
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(0);
  });
});
